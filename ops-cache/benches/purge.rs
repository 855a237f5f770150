#![allow(
    clippy::cast_precision_loss,
    reason = "microseconds and key counts printed as floats"
)]
//! Purge benchmark: opsbook's SCAN + pipelined UNLINK against the two shell recipes.
//!
//! ```sh
//! cargo bench -p ops-cache --bench purge      # or scripts/bench purge
//! ```
//!
//! Starts its own `redis-server` on a free port. Before every run the same fresh dataset is
//! loaded (`OPSBOOK_BENCH_KEYS` `session:*` keys, default 1 000 000, 20 000 with
//! `OPSBOOK_BENCH_QUICK=1`, and a fifth as many `other:*` keys, 16-byte values, via
//! `DEBUG POPULATE`) and `session:*` is deleted with, per round (`OPSBOOK_BENCH_ROUNDS`,
//! default 3, order rotated each round):
//!
//! 1. opsbook: `RedisCache::purge_keys` with default options;
//! 2. `redis-cli KEYS 'session:*' | xargs redis-cli DEL`;
//! 3. `redis-cli --scan --pattern 'session:*' | xargs redis-cli UNLINK`.
//!
//! Meanwhile a separate client sends `PING` every millisecond and records the worst latency.
//! After each run every `session:*` key must be gone and every `other:*` key left (checked
//! with SCAN after the run). For opsbook's run the server's own time is the `usec` of the
//! commands it served (`INFO commandstats`, reset just before the run; PING, INFO and CONFIG
//! left out): the floor the server sets. Last line: `RESULT keys=… others=… opsbook_s=…
//! keys_s=… scan_s=… server_s=… ping_ms=… ping_keys_ms=… ping_scan_ms=…` (per-round lists).
//! Environment: `REDIS_SERVER` / `REDIS_CLI` override the binaries, `OPSBOOK_BENCH_BATCH`
//! the purge's batch size.

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
use ops_tests::bench::{ResultLine, Samples, order, rounds, size};

/// How many keys of each kind a run starts with.
#[derive(Debug, Clone, Copy)]
struct Dataset {
    sessions: u64,
    others: u64,
}

#[allow(clippy::too_many_lines, reason = "a benchmark reads top to bottom")]
fn main() -> anyhow::Result<()> {
    let sessions = size("OPSBOOK_BENCH_KEYS", 1_000_000, 20_000) as u64;
    let data = Dataset {
        sessions,
        others: sessions / 5,
    };
    let rounds = rounds();
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
    let cache = RedisCacheBuilder::new()
        .with_url(format!("redis://127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(30))
        .build()?;
    let pattern = KeyPattern::new("session:*")?;
    let mut opts = PurgeOptions::default();
    if let Some(n) = std::env::var("OPSBOOK_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts = opts.with_batch_size(n);
    }

    let (mut t_ops, mut t_keys, mut t_scan, mut t_server) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let (mut p_ops, mut p_keys, mut p_scan) =
        (Samples::default(), Samples::default(), Samples::default());
    for round in 0..rounds {
        for method in order(round, 3) {
            load(port, data)?;
            command(port, &["CONFIG", "RESETSTAT"])?;
            let pinger = Pinger::start(port)?;
            let started = Instant::now();
            let name = match method {
                0 => {
                    let outcome = runtime.block_on(cache.purge_keys(&pattern, &opts))?;
                    let took = started.elapsed();
                    ensure!(
                        outcome.deleted == data.sessions,
                        "opsbook purge deleted {} of {} ({outcome:?})",
                        outcome.deleted,
                        data.sessions
                    );
                    t_ops.push_secs(took);
                    p_ops.push(ms(pinger.stop()?));
                    t_server.push(server_time(port)?);
                    "opsbook purge_keys"
                }
                1 => {
                    pipeline(&cli, port, &["KEYS", "session:*"], "DEL")?;
                    t_keys.push_secs(started.elapsed());
                    p_keys.push(ms(pinger.stop()?));
                    "KEYS | xargs DEL"
                }
                _ => {
                    pipeline(&cli, port, &["--scan", "--pattern", "session:*"], "UNLINK")?;
                    t_scan.push_secs(started.elapsed());
                    p_scan.push(ms(pinger.stop()?));
                    "--scan | xargs UNLINK"
                }
            };
            check_left(port, name, data)?;
        }
        println!(
            "round {round}: opsbook {:.3} s (server {:.3} s, worst PING {:.2} ms), KEYS | xargs DEL {:.3} s (worst PING {:.2} ms), --scan | xargs UNLINK {:.3} s (worst PING {:.2} ms)",
            t_ops.last(),
            t_server.last(),
            p_ops.last(),
            t_keys.last(),
            p_keys.last(),
            t_scan.last(),
            p_scan.last()
        );
    }
    drop(server);
    ResultLine::new()
        .value("keys", data.sessions)
        .value("others", data.others)
        .value("batch", opts.batch_size)
        .samples("opsbook_s", &t_ops, 3)
        .samples("keys_s", &t_keys, 3)
        .samples("scan_s", &t_scan, 3)
        .samples("server_s", &t_server, 3)
        .samples("ping_ms", &p_ops, 2)
        .samples("ping_keys_ms", &p_keys, 2)
        .samples("ping_scan_ms", &p_scan, 2)
        .print();
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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

/// A fresh dataset: `FLUSHALL`, then `session:N` and `other:N` keys with 16-byte values.
fn load(port: u16, data: Dataset) -> anyhow::Result<()> {
    command(port, &["FLUSHALL"])?;
    command(
        port,
        &[
            "DEBUG",
            "POPULATE",
            &data.sessions.to_string(),
            "session",
            "16",
        ],
    )?;
    command(
        port,
        &["DEBUG", "POPULATE", &data.others.to_string(), "other", "16"],
    )?;
    let size = command(port, &["DBSIZE"])?;
    ensure!(
        size == format!(":{}", data.sessions + data.others),
        "dataset has {size} keys"
    );
    Ok(())
}

/// The server's own time, in seconds, for the commands it served since the last
/// `CONFIG RESETSTAT` (`INFO commandstats`), leaving out the pinger's PING and the
/// benchmark's INFO and CONFIG; each command's share is printed.
fn server_time(port: u16) -> anyhow::Result<f64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection()?;
    let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut conn)?;
    let mut total_usec = 0_u64;
    for line in stats.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if matches!(name, "ping" | "info" | "config" | "config|resetstat") {
            continue;
        }
        let used: u64 = rest
            .split(',')
            .find_map(|f| f.strip_prefix("usec="))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no usec in {line}"))?;
        println!("  server {name}: {rest}");
        total_usec += used;
    }
    Ok(total_usec as f64 / 1e6)
}

/// `(session:* left, other:* left)`, counted with SCAN on a plain connection.
fn counts(port: u16) -> anyhow::Result<(u64, u64)> {
    let others = scan_count(port, "other:*")?;
    let sessions = scan_count(port, "session:*")?;
    Ok((sessions, others))
}

fn check_left(port: u16, name: &str, data: Dataset) -> anyhow::Result<()> {
    let (sessions, others) = counts(port)?;
    ensure!(
        sessions == 0 && others == data.others,
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
