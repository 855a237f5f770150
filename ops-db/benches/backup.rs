//! Backup overhead: opsbook's verified backup (dump streamed through SHA-256 into a temp file,
//! fsync, `.sha256` sidecar, rename, directory fsync) against a bare `pg_dump -Fc --file F`
//! followed by `sync F`, to the same directory on a real disk, from PostgreSQL running with
//! `fsync=on`.
//!
//! ```sh
//! cargo bench -p ops-db --bench backup      # or scripts/bench backup
//! ```
//!
//! PostgreSQL runs in a container from `OPSBOOK_IMAGE_POSTGRES` (default `opsbook/postgres:15`,
//! whose configuration turns fsync off for tests) started with `-c fsync=on -c
//! synchronous_commit=on -c full_page_writes=on`; the benchmark checks them with `SHOW`. The
//! dumps go to `OPSBOOK_BENCH_DIR` (default: cargo's temporary directory for benchmarks inside
//! the target directory); the benchmark names its filesystem and refuses a memory one (tmpfs,
//! ramfs), where fsync costs nothing. `OPSBOOK_BENCH_ROWS` sets the size (default 3 500 000
//! rows, about 500 MB; 50 000 with `OPSBOOK_BENCH_QUICK=1`).
//!
//! Correctness before timing: one opsbook backup is checked with `sha256sum -c` against its
//! sidecar, restored into a new database through `Database::restore` (checksum verified,
//! scratch database, swap) and compared with the source (row count, sum of ids, sum of row
//! hashes). Then per round (`OPSBOOK_BENCH_ROUNDS`, default 3) both methods run, order
//! alternated. Last line: `RESULT rows=… dump_mb=… filesystem=… fsync=on opsbook_s=…
//! bare_sync_s=… restore_identical=true` (per-round lists).

#![allow(clippy::cast_precision_loss, reason = "sizes printed in MB")]
#![allow(clippy::too_many_lines, reason = "one linear benchmark script")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use ops_core::Database;
use ops_core::Identifier;
use ops_core::database::{BackupOptions, RestoreOptions};
use ops_db::PgDatabaseBuilder;
use ops_tests::bench::{ResultLine, Samples, filesystem, is_memory_fs, order, rounds, size};
use ops_tests::{ServiceError, Stack};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

/// A bare `pg_dump -Fc --file F`, then `sync F` (fsync of the dump, as `BackupOptions`
/// does; a global `sync` would also flush whatever else the machine has written).
async fn bare_pg_dump(url: &url::Url, database: &str, file: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = tokio::process::Command::new("pg_dump")
        .arg("--format=custom")
        .arg("--no-password")
        .arg("--file")
        .arg(file)
        .env("PGHOST", url.host_str().unwrap_or("127.0.0.1"))
        .env("PGPORT", url.port().unwrap_or(5432).to_string())
        .env("PGUSER", url.username())
        .env("PGPASSWORD", url.password().unwrap_or_default())
        .env("PGDATABASE", database)
        .stdin(Stdio::null())
        .status()
        .await
        .context("running pg_dump")?;
    ensure!(status.success(), "pg_dump failed: {status}");
    let status = tokio::process::Command::new("sync")
        .arg(file)
        .status()
        .await
        .context("running sync")?;
    ensure!(status.success(), "sync failed: {status}");
    Ok(started.elapsed())
}

/// Cheap whole-table fingerprint: row count and sums of ids and of per-row hashes.
async fn fingerprint(url: &str) -> anyhow::Result<(i64, i64, String)> {
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    let row: (i64, i64, String) = sqlx::query_as(
        "SELECT count(*)::int8, sum(id)::int8, sum(hashtext(payload || at::text)::int8)::text FROM bench",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(row)
}

fn remove_backup(path: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(path)?;
    std::fs::remove_file(format!("{}.sha256", path.display()))?;
    Ok(())
}

/// Where the dumps go: `OPSBOOK_BENCH_DIR`, else cargo's temporary directory for benchmarks.
fn dump_root() -> PathBuf {
    std::env::var_os("OPSBOOK_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = size("OPSBOOK_BENCH_ROWS", 3_500_000, 50_000);
    let rounds = rounds();
    let root = dump_root();
    std::fs::create_dir_all(&root)?;
    let dir = tempfile::tempdir_in(&root)?;
    let (fs, mount) = filesystem(dir.path());
    println!(
        "dumps in {} on {fs} (mounted at {})",
        dir.path().display(),
        mount.display()
    );
    ensure!(
        !is_memory_fs(&fs),
        "{} is on {fs}, a memory filesystem: fsync costs nothing there; set OPSBOOK_BENCH_DIR to a directory on a disk",
        dir.path().display()
    );

    let stack = Stack::new();
    let durable = [
        ("fsync", "on"),
        ("synchronous_commit", "on"),
        ("full_page_writes", "on"),
    ];
    let pg = match stack.postgres_with_settings(&durable).await {
        Ok(pg) => pg,
        Err(err @ ServiceError::Unavailable(_)) if !ops_tests::in_ci() => {
            eprintln!("skipping benchmark: {err}");
            ResultLine::new()
                .value("skipped", "postgres-unavailable")
                .print();
            return Ok(());
        }
        Err(err) => bail!("PostgreSQL unavailable: {err}"),
    };
    let url = url::Url::parse(pg.url())?;
    let database = pg.database().to_owned();

    let mut conn = PgConnectOptions::from_str(pg.url())?.connect().await?;
    for (name, want) in durable {
        let got: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(&mut conn)
            .await?;
        ensure!(got == want, "the server runs with {name}={got}, not {want}");
    }
    let t = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE bench AS SELECT g::int8 AS id, \
         md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS payload, \
         now() - g * interval '1 second' AS at FROM generate_series(1, {rows}) g"
    )))
    .execute(&mut conn)
    .await?;
    sqlx::query("ALTER TABLE bench ADD PRIMARY KEY (id)")
        .execute(&mut conn)
        .await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    let db_size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    println!(
        "generated {rows} rows, database {:.0} MB in {:.1} s (fsync=on)",
        db_size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let mut admin_url = url.clone();
    admin_url.set_path("/postgres");
    let db = PgDatabaseBuilder::new(admin_url.as_str()).build()?;
    let name = Identifier::new(&database)?;

    // Correctness first (also the warm-up): the sidecar checks out with sha256sum and the
    // restore gives the same table.
    let info = db
        .backup(&BackupOptions::new(name.clone(), dir.path()))
        .await?;
    let check = tokio::process::Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{}.sha256", info.path.display()))
        .current_dir(dir.path())
        .output()
        .await
        .context("running sha256sum")?;
    ensure!(
        check.status.success(),
        "sha256sum -c refused opsbook's sidecar: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let restored_name = Identifier::new(&format!("{database}_restored"))?;
    let started = Instant::now();
    let outcome = db
        .restore(&RestoreOptions::new(&info.path, restored_name))
        .await?;
    let mut restored_url = url.clone();
    restored_url.set_path(&format!("/{}", outcome.database));
    let source = fingerprint(pg.url()).await?;
    let copy = fingerprint(restored_url.as_str()).await?;
    ensure!(
        source == copy && source.0 == i64::try_from(rows)?,
        "the restored table differs: {source:?} vs {copy:?}"
    );
    println!(
        "restore of a {:.0} MB dump (verify checksum, scratch database, swap) {:.2} s: identical {source:?}",
        info.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let dump_mb = info.bytes as f64 / 1e6;
    remove_backup(&info.path)?;

    let (mut ours, mut bare) = (Samples::default(), Samples::default());
    for round in 0..rounds {
        for method in order(round, 2) {
            if method == 0 {
                let started = Instant::now();
                let info = db
                    .backup(&BackupOptions::new(name.clone(), dir.path()))
                    .await?;
                ours.push_secs(started.elapsed());
                ensure!(info.sha256.len() == 64 && info.bytes > 0, "{info:?}");
                remove_backup(&info.path)?;
            } else {
                let file = dir.path().join("bare.dump");
                bare.push_secs(bare_pg_dump(&url, &database, &file).await?);
                ensure!(std::fs::metadata(&file)?.len() > 0, "empty bare dump");
                std::fs::remove_file(&file)?;
            }
        }
        println!(
            "round {round}: opsbook backup {:.2} s, pg_dump -Fc + sync {:.2} s",
            ours.last(),
            bare.last()
        );
    }
    ResultLine::new()
        .value("rows", rows)
        .value("dump_mb", format!("{dump_mb:.0}"))
        .value("filesystem", fs)
        .value("fsync", "on")
        .samples("opsbook_s", &ours, 3)
        .samples("bare_sync_s", &bare, 3)
        .value("restore_identical", true)
        .print();
    Ok(())
}
