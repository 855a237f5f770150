//! Cache backup: opsbook's `cache_backup` runbook against what an on-call engineer types.
//!
//! - **opsbook**: `runbooks::cache_backup` in execute mode, approved, journaled to SQLite on
//!   disk: `BGSAVE`, wait for the save, copy the RDB file out of the container through the
//!   engine (`Platform::copy_from`), SHA-256, fsync, `.sha256` sidecar, rename, directory
//!   fsync, then the verification read.
//! - **docker cp**: the seed's way: `redis-cli BGSAVE`, poll `INFO persistence` every 100 ms
//!   until the save is done, `docker cp` the file (`CONFIG GET dir`/`dbfilename`) out, `sha256sum > F.sha256`, `sync` both.
//! - **redis-cli --rdb**: the strongest alternative a user with network access has: the
//!   server streams a fresh RDB over the replication protocol (no copy through the engine),
//!   then `sha256sum` and `sync`.
//!
//! ```sh
//! scripts/bench cache-backup                 # or cargo bench -p ops-examples --bench cache_backup
//! ```
//!
//! Redis runs as the drill's compose project on the local engine (`OPSBOOK_IMAGE_*` name the
//! images). `OPSBOOK_BENCH_KEYS` sets the size (default 1 500 000 keys of 100 incompressible
//! bytes, an RDB of about 190 MB; 20 000 with `OPSBOOK_BENCH_QUICK=1`). Files go to `OPSBOOK_BENCH_DIR`
//! (default: cargo's temporary directory for benchmarks); a memory filesystem is refused.
//!
//! Correctness before timing: each method's file starts `REDIS`, has the same size within 1 %
//! of the others' (the RDB holds a timestamp and may differ by a few bytes), passes
//! `redis-check-rdb`, and opsbook's sidecar passes `sha256sum -c`. Last line: `RESULT keys=…
//! rdb_mb=… filesystem=… opsbook_s=… docker_cp_s=… redis_rdb_s=… rss_growth_mib=…`.

#![allow(clippy::cast_precision_loss, reason = "sizes printed in MB")]
#![allow(clippy::too_many_lines, reason = "one linear benchmark script")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use ops_core::Cache;
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{Targets, cache_backup};
use ops_examples::stack::{self, Images, Stack};
use ops_tests::bench::{
    PeakRss, ResultLine, Samples, filesystem, is_memory_fs, order, rounds, size,
};

/// Run `program args…`, failing with its stderr when it fails; its stdout.
async fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fill the cache with `keys` keys of 100 bytes through `redis-cli --pipe` (the protocol
/// written to its stdin in batches).
async fn fill(port: &str, keys: usize) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("redis-cli")
        .args(["-p", port, "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running redis-cli --pipe")?;
    let mut stdin = child.stdin.take().context("redis-cli stdin")?;
    let mut batch = Vec::with_capacity(1 << 20);
    for i in 0..keys {
        let key = format!("bench:{i:09}");
        let value = incompressible(i);
        batch.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
        if batch.len() > 1 << 20 {
            stdin.write_all(&batch).await?;
            batch.clear();
        }
    }
    stdin.write_all(&batch).await?;
    drop(stdin);
    let status = child.wait().await?;
    ensure!(status.success(), "redis-cli --pipe failed: {status}");
    Ok(())
}

/// 100 bytes that RDB's LZF compression cannot shrink much: hex of a `SplitMix64` sequence
/// seeded by `i`, so the file is about as large as the data.
fn incompressible(i: usize) -> String {
    use std::fmt::Write as _;
    let mut state = u64::try_from(i).unwrap_or(u64::MAX);
    let mut out = String::with_capacity(112);
    while out.len() < 100 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        // Writing to a String cannot fail.
        let _ = write!(out, "{:016x}", z ^ (z >> 31));
    }
    out.truncate(100);
    out
}

/// The seed's way: BGSAVE, poll until saved, `docker cp`, `sha256sum`, `sync`.
async fn docker_cp(port: &str, source: &str, file: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let saves = |info: &str| -> anyhow::Result<(bool, u64)> {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let busy = field("rdb_bgsave_in_progress:").context("no rdb_bgsave_in_progress")? == "1";
        let changes = field("rdb_changes_since_last_save:")
            .context("no rdb_changes_since_last_save")?
            .parse()?;
        Ok((busy, changes))
    };
    // redis-cli exits 0 on an error reply: read it. Behind another save (the previous
    // round's `redis-cli --rdb` fork may still be writing) the engineer waits and asks again,
    // as opsbook does, so both copy a save of their own.
    let before = loop {
        let before = run("redis-cli", &["-p", port, "LASTSAVE"]).await?;
        let reply = run("redis-cli", &["-p", port, "BGSAVE"]).await?;
        if reply.contains("started") {
            break before;
        }
        ensure!(reply.contains("already in progress"), "BGSAVE: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let info = run("redis-cli", &["-p", port, "INFO", "persistence"]).await?;
        let (busy, changes) = saves(&info)?;
        let last = run("redis-cli", &["-p", port, "LASTSAVE"]).await?;
        if !busy && (last != before || changes == 0) {
            ensure!(
                info.contains("rdb_last_bgsave_status:ok"),
                "the save failed: {info}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let target = file.display().to_string();
    run("docker", &["cp", source, &target]).await?;
    checksum_and_sync(file).await?;
    Ok(started.elapsed())
}

/// `redis-cli --rdb F`, then `sha256sum` and `sync`.
async fn redis_rdb(port: &str, file: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let target = file.display().to_string();
    run("redis-cli", &["-p", port, "--rdb", &target]).await?;
    checksum_and_sync(file).await?;
    Ok(started.elapsed())
}

/// `sha256sum F > F.sha256 && sync F F.sha256`, run from F's directory as a user would.
async fn checksum_and_sync(file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().context("a file in a directory")?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("a file name")?;
    let sum = tokio::process::Command::new("sha256sum")
        .arg(name)
        .current_dir(dir)
        .output()
        .await
        .context("running sha256sum")?;
    ensure!(sum.status.success(), "sha256sum failed");
    let sidecar = dir.join(format!("{name}.sha256"));
    std::fs::write(&sidecar, &sum.stdout)?;
    run(
        "sync",
        &[&file.display().to_string(), &sidecar.display().to_string()],
    )
    .await?;
    Ok(())
}

/// The file is an RDB file that `redis-check-rdb` accepts; its size.
async fn check_rdb(file: &Path) -> anyhow::Result<u64> {
    let mut head = [0u8; 5];
    std::io::Read::read_exact(&mut std::fs::File::open(file)?, &mut head)?;
    ensure!(&head == b"REDIS", "{} is not an RDB file", file.display());
    let out = tokio::process::Command::new("redis-check-rdb")
        .arg(file)
        .output()
        .await
        .context("running redis-check-rdb")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused {}: {text}",
        file.display()
    );
    Ok(std::fs::metadata(file)?.len())
}

/// Every `.rdb` file and sidecar in `dir`, removed.
fn clear(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// The one `.rdb` file opsbook wrote in `dir`.
fn written(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .collect();
    ensure!(files.len() == 1, "opsbook wrote {files:?}");
    files.pop().context("one file")
}

/// Where the files go: `OPSBOOK_BENCH_DIR`, else cargo's temporary directory for benchmarks.
fn bench_root() -> PathBuf {
    std::env::var_os("OPSBOOK_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let keys = size("OPSBOOK_BENCH_KEYS", 1_500_000, 20_000);
    let rounds = rounds();
    let root = bench_root();
    std::fs::create_dir_all(&root)?;
    let work = tempfile::tempdir_in(&root)?;
    let (fs, mount) = filesystem(work.path());
    println!(
        "files in {} on {fs} (mounted at {})",
        work.path().display(),
        mount.display()
    );
    ensure!(
        !is_memory_fs(&fs),
        "{} is on {fs}, a memory filesystem: fsync costs nothing there; set OPSBOOK_BENCH_DIR to a directory on a disk",
        work.path().display()
    );
    let images = Images::from_env();
    let docker = match stack::ensure_images(&images).await {
        Ok(d) => d,
        Err(e) if !ops_tests::in_ci() => {
            eprintln!("skipping benchmark: {e:#}");
            ResultLine::new().value("skipped", "no-engine").print();
            return Ok(());
        }
        Err(e) => bail!("no Docker engine or images: {e:#}"),
    };
    let stack = Stack::start(docker, images).await?;
    let outcome = measure(&stack, keys, rounds, work.path(), &fs).await;
    stack.teardown().await?;
    outcome
}

async fn measure(
    stack: &Stack,
    keys: usize,
    rounds: usize,
    work: &Path,
    fs: &str,
) -> anyhow::Result<()> {
    let cache_ref = stack.service("cache");
    stack.platform.start_project(&stack.project).await?;
    let cache: Arc<dyn Cache> = Arc::new(
        ops_cache::RedisCacheBuilder::new()
            .with_url(stack.redis_url())
            .build()?,
    );
    stack::until("the cache answers", Duration::from_secs(60), async || {
        cache.ping().await.is_ok()
    })
    .await?;
    let port = stack.redis_port.to_string();
    let container = ops_compose::labels::container_name(&stack.project, "cache", 1);
    // Where the server writes its file, as the seed's engineer would look it up.
    let config = |key: &'static str| {
        let port = port.clone();
        async move {
            let out = run("redis-cli", &["-p", &port, "CONFIG", "GET", key]).await?;
            out.lines()
                .nth(1)
                .map(str::to_owned)
                .with_context(|| format!("CONFIG GET {key}: {out}"))
        }
    };
    let rdb_path = format!("{}/{}", config("dir").await?, config("dbfilename").await?);

    let t = Instant::now();
    fill(&port, keys).await?;
    let dbsize = run("redis-cli", &["-p", &port, "DBSIZE"]).await?;
    ensure!(
        dbsize.trim() == keys.to_string(),
        "DBSIZE {dbsize} after loading {keys} keys"
    );
    println!("loaded {keys} keys in {:.1} s", t.elapsed().as_secs_f64());

    let journal_dir = work.join("journal");
    std::fs::create_dir_all(&journal_dir)?;
    let journal: Arc<dyn ops_core::Journal> =
        Arc::new(ops_db::SqliteJournal::open(&journal_dir.join("journal.db")).await?);
    let source = format!("{container}:{rdb_path}");
    let targets = Targets::new(Arc::clone(&stack.platform) as _, cache_ref.clone())
        .with_cache(Arc::clone(&cache));
    let ours = work.join("opsbook");
    let theirs = work.join("baseline");
    std::fs::create_dir_all(&ours)?;
    std::fs::create_dir_all(&theirs)?;
    let backup = |dir: PathBuf| {
        let journal = Arc::clone(&journal);
        let targets = &targets;
        async move {
            let ctx = RunContext::builder()
                .mode(Mode::Execute)
                .approver(ApprovalPolicy::approve_all("bench"))
                .journal(journal)
                .build();
            let started = Instant::now();
            let report = cache_backup(&ctx, targets, &dir)
                .await
                .map_err(|f| anyhow::anyhow!("cache_backup failed: {f}"))?;
            let took = started.elapsed();
            ensure!(
                report.outcome == RunOutcome::Recovered,
                "{}",
                report.to_markdown()
            );
            anyhow::Ok(took)
        }
    };

    // Correctness first (also the warm-up): three files of the same data, each an RDB file
    // redis-check-rdb accepts; opsbook's sidecar passes sha256sum -c.
    let rss = PeakRss::start();
    backup(ours.clone()).await?;
    let rss_first = rss.growth_mib();
    let file = written(&ours)?;
    let our_size = check_rdb(&file).await?;
    let name = file.file_name().and_then(|n| n.to_str()).context("name")?;
    let check = tokio::process::Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(&ours)
        .output()
        .await?;
    ensure!(
        check.status.success(),
        "sha256sum -c refused opsbook's sidecar: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    docker_cp(&port, &source, &theirs.join("cp.rdb")).await?;
    let cp_size = check_rdb(&theirs.join("cp.rdb")).await?;
    redis_rdb(&port, &theirs.join("stream.rdb")).await?;
    let stream_size = check_rdb(&theirs.join("stream.rdb")).await?;
    for (what, size) in [("docker cp", cp_size), ("redis-cli --rdb", stream_size)] {
        ensure!(
            our_size.abs_diff(size) * 100 <= size,
            "opsbook's file has {our_size} bytes, {what}'s {size}"
        );
    }
    let rdb_mb = our_size as f64 / 1e6;
    println!(
        "correct: three RDB files of {rdb_mb:.1} MB accepted by redis-check-rdb; peak RSS grew {rss_first:.0} MiB during opsbook's backup"
    );
    clear(&ours)?;
    clear(&theirs)?;

    let (mut opsbook, mut cp, mut stream) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut rss_growth = Samples::default();
    for round in 0..rounds {
        for method in order(round, 3) {
            match method {
                0 => {
                    let rss = PeakRss::start();
                    opsbook.push_secs(backup(ours.clone()).await?);
                    rss_growth.push(rss.growth_mib());
                    clear(&ours)?;
                }
                1 => {
                    cp.push_secs(docker_cp(&port, &source, &theirs.join("cp.rdb")).await?);
                    clear(&theirs)?;
                }
                _ => {
                    stream.push_secs(redis_rdb(&port, &theirs.join("stream.rdb")).await?);
                    clear(&theirs)?;
                }
            }
        }
        println!(
            "round {round}: opsbook {:.2} s, BGSAVE + docker cp {:.2} s, redis-cli --rdb {:.2} s",
            opsbook.last(),
            cp.last(),
            stream.last()
        );
    }
    ResultLine::new()
        .value("keys", keys)
        .value("rdb_mb", format!("{rdb_mb:.1}"))
        .value("filesystem", fs)
        .samples("opsbook_s", &opsbook, 3)
        .samples("docker_cp_s", &cp, 3)
        .samples("redis_rdb_s", &stream, 3)
        .samples("rss_growth_mib", &rss_growth, 1)
        .print();
    Ok(())
}
