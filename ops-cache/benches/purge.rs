//! Purge benchmark: opsbook's SCAN + pipelined UNLINK against the two shell recipes.
//!
//! `cargo bench -p ops-cache --bench purge` starts its own `redis-server` on a free port,
//! and for each method reloads the same fresh dataset (1 M `session:*` keys, 200 k `other:*`
//! keys, 16-byte values, via `DEBUG POPULATE`) and deletes `session:*` with:
//!
//! 1. opsbook: `RedisCache::purge_keys` with default options;
//! 2. `redis-cli KEYS 'session:*' | xargs redis-cli DEL`;
//! 3. `redis-cli --scan --pattern 'session:*' | xargs redis-cli UNLINK`.
//!
//! Meanwhile a separate client sends `PING` every millisecond and records the worst latency.
//! The last line is
//! `RESULT speedup_vs_keys=X speedup_vs_scan=Y max_ping_ms_opsbook=Z max_ping_ms_keys=W remaining_other_keys=N`.
//! Environment: `REDIS_SERVER` / `REDIS_CLI` override the binaries.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use ops_cache::RedisCacheBuilder;
use ops_core::KeyPattern;
use ops_core::cache::PurgeOptions;

const SESSIONS: u64 = 1_000_000;
const OTHERS: u64 = 200_000;

fn main() -> anyhow::Result<()> {
    let server_bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned());
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let server = Server::start(&server_bin, port, dir.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // 1. opsbook.
    let cache = RedisCacheBuilder::new()
        .with_url(format!("redis://127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(30))
        .build()?;
    let sessions = KeyPattern::new("session:*")?;
    let mut opts = PurgeOptions::default();
    if let Some(n) = std::env::var("OPSBOOK_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts = opts.with_batch_size(n);
    }
    load(port)?;
    let pinger = Pinger::start(port)?;
    let started = Instant::now();
    let outcome = runtime.block_on(cache.purge_keys(&sessions, &opts))?;
    let t_ops = started.elapsed();
    let ping_ops = pinger.stop()?;
    let (left_sessions, remaining_other) = counts(port)?;
    ensure!(
        outcome.deleted == SESSIONS && left_sessions == 0,
        "opsbook purge left {left_sessions} sessions ({outcome:?})"
    );
    report(
        &format!("opsbook purge (batch {})", opts.batch_size),
        t_ops,
        ping_ops,
    );
    server_time(port)?;
    println!(
        "  scanned={} matched={} deleted={}",
        outcome.scanned, outcome.matched, outcome.deleted
    );

    // 2. KEYS | xargs DEL.
    load(port)?;
    let pinger = Pinger::start(port)?;
    let started = Instant::now();
    pipeline(&cli, port, &["KEYS", "session:*"], "DEL")?;
    let t_keys = started.elapsed();
    let ping_keys = pinger.stop()?;
    check_left(port, "KEYS | xargs DEL")?;
    report("KEYS | xargs DEL", t_keys, ping_keys);
    server_time(port)?;

    // 3. --scan | xargs UNLINK.
    load(port)?;
    let pinger = Pinger::start(port)?;
    let started = Instant::now();
    pipeline(&cli, port, &["--scan", "--pattern", "session:*"], "UNLINK")?;
    let t_scan = started.elapsed();
    let ping_scan = pinger.stop()?;
    check_left(port, "--scan | xargs UNLINK")?;
    report("--scan | xargs UNLINK", t_scan, ping_scan);
    server_time(port)?;

    drop(server);
    println!(
        "RESULT speedup_vs_keys={:.2} speedup_vs_scan={:.2} max_ping_ms_opsbook={:.2} max_ping_ms_keys={:.2} remaining_other_keys={remaining_other}",
        t_keys.as_secs_f64() / t_ops.as_secs_f64(),
        t_scan.as_secs_f64() / t_ops.as_secs_f64(),
        ms(ping_ops),
        ms(ping_keys),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, took: Duration, ping: Duration) {
    println!(
        "{name:<24} {:>8.0} ms   worst PING {:>7.2} ms",
        ms(took),
        ms(ping)
    );
}

/// A `redis-server` child, shut down on drop.
struct Server(Child);

impl Server {
    fn start(bin: &str, port: u16, dir: &std::path::Path) -> anyhow::Result<Self> {
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {bin}"))?;
        let server = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while command(port, &["PING"]).is_err() {
            ensure!(
                Instant::now() < deadline,
                "redis-server did not answer in 10 s"
            );
            pause(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh dataset: `FLUSHALL`, then 1 M `session:N` and 200 k `other:N`, 16-byte values.
fn load(port: u16) -> anyhow::Result<()> {
    command(port, &["FLUSHALL"])?;
    command(port, &["CONFIG", "RESETSTAT"])?;
    command(
        port,
        &["DEBUG", "POPULATE", &SESSIONS.to_string(), "session", "16"],
    )?;
    command(
        port,
        &["DEBUG", "POPULATE", &OTHERS.to_string(), "other", "16"],
    )?;
    let size = command(port, &["DBSIZE"])?;
    ensure!(
        size == format!(":{}", SESSIONS + OTHERS),
        "dataset has {size} keys"
    );
    Ok(())
}

/// Print the server-side time of the commands that did the work (`INFO commandstats`).
fn server_time(port: u16) -> anyhow::Result<()> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection()?;
    let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut conn)?;
    for line in stats.lines() {
        for name in ["scan", "unlink", "del", "keys"] {
            if let Some(rest) = line.strip_prefix(&format!("cmdstat_{name}:")) {
                println!("  server {name}: {rest}");
            }
        }
    }
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut conn)?;
    Ok(())
}

/// `(session:* left, other:* left)`, counted with SCAN on a plain connection.
fn counts(port: u16) -> anyhow::Result<(u64, u64)> {
    let others = scan_count(port, "other:*")?;
    let sessions = scan_count(port, "session:*")?;
    Ok((sessions, others))
}

fn check_left(port: u16, name: &str) -> anyhow::Result<()> {
    let (sessions, others) = counts(port)?;
    ensure!(
        sessions == 0 && others == OTHERS,
        "{name} left {sessions} sessions and {others} others"
    );
    Ok(())
}

fn scan_count(port: u16, pattern: &str) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let keys = ops_tests::scan_keys(&mut conn, pattern).await?;
        Ok(keys.len() as u64)
    })
}

/// `redis-cli -p PORT <producer...> | xargs redis-cli -p PORT <verb>`, as argv (no shell).
fn pipeline(cli: &str, port: u16, producer: &[&str], verb: &str) -> anyhow::Result<()> {
    let port = port.to_string();
    let mut first = Command::new(cli)
        .args(["-p", &port])
        .args(producer)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start redis-cli")?;
    let keys = first.stdout.take().context("no stdout")?;
    let second = Command::new("xargs")
        .args([cli, "-p", &port, verb])
        .stdin(keys)
        .stdout(Stdio::null())
        .status()
        .context("cannot run xargs")?;
    let first = first.wait()?;
    if !first.success() || !second.success() {
        bail!("pipeline failed: {first} / {second}");
    }
    Ok(())
}

/// One RESP command on a fresh connection; the reply's first line.
fn command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        let _ = write!(req, "${}\r\n{a}\r\n", a.len());
    }
    stream.write_all(req.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let line = line.trim_end().to_owned();
    ensure!(!line.starts_with('-'), "{args:?} failed: {line}");
    Ok(line)
}

#[allow(
    clippy::disallowed_methods,
    reason = "the benchmark's own threads are plain threads, not async code"
)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// A thread sending `PING` every millisecond on its own connection, keeping the worst latency.
struct Pinger {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<Duration>>,
}

impl Pinger {
    fn start(port: u16) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut worst = Duration::ZERO;
            let mut line = String::new();
            while !flag.load(Ordering::Relaxed) {
                let sent = Instant::now();
                stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
                line.clear();
                reader.read_line(&mut line)?;
                worst = worst.max(sent.elapsed());
                ensure!(line.starts_with("+PONG"), "PING answered {line:?}");
                pause(Duration::from_millis(1));
            }
            Ok(worst)
        });
        Ok(Self { stop, handle })
    }

    fn stop(self) -> anyhow::Result<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok(result) => result,
            Err(_) => bail!("the pinger thread panicked"),
        }
    }
}
