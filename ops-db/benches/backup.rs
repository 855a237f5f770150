//! Backup overhead: an opsbook backup (stream through SHA-256, fsync, `.sha256` sidecar,
//! rename) against a bare `pg_dump -Fc --file` and a bare `pg_dump -Fc > file` (the overhead is
//! taken against the faster of the two) of the same ~500 MB database, rotating in one
//! run, then a verified restore of the last opsbook backup into a new database.
//!
//! `cargo bench -p ops-db --bench backup` (PostgreSQL in a container from
//! `OPSBOOK_IMAGE_POSTGRES`, default `opsbook/postgres:15`). `OPSBOOK_BENCH_ROWS` sets the size
//! (default 3 500 000 rows, about 500 MB), `OPSBOOK_BENCH_ROUNDS` the rounds (default 3).
//! The last line is `RESULT backup_overhead_pct=X restore_verified=true|false`.

#![allow(clippy::cast_precision_loss, reason = "sizes printed in MB")]
#![allow(clippy::too_many_lines, reason = "one linear benchmark script")]

use std::path::Path;
use std::process::Stdio;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ops_core::Database;
use ops_core::Identifier;
use ops_core::database::{BackupOptions, RestoreOptions};
use ops_db::PgDatabaseBuilder;
use ops_tests::{ServiceError, Stack};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How the bare baseline writes its dump.
#[derive(Clone, Copy)]
enum Bare {
    /// `pg_dump -Fc --file F`.
    FileArg,
    /// `pg_dump -Fc > F` (stdout redirected, as on-call engineers type it).
    Redirect,
}

/// A bare `pg_dump -Fc` to a file, connection in the environment like opsbook's.
async fn bare_pg_dump(
    url: &url::Url,
    database: &str,
    file: &Path,
    how: Bare,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("pg_dump");
    cmd.arg("--format=custom").arg("--no-password");
    match how {
        Bare::FileArg => {
            cmd.arg("--file").arg(file);
        }
        Bare::Redirect => {
            cmd.stdout(Stdio::from(
                std::fs::File::create(file).context("creating the dump file")?,
            ));
        }
    }
    let status = cmd
        .env("PGHOST", url.host_str().unwrap_or("127.0.0.1"))
        .env("PGPORT", url.port().unwrap_or(5432).to_string())
        .env("PGUSER", url.username())
        .env("PGPASSWORD", url.password().unwrap_or_default())
        .env("PGDATABASE", database)
        .stdin(Stdio::null())
        .status()
        .await
        .context("running pg_dump")?;
    if !status.success() {
        bail!("pg_dump failed: {status}");
    }
    Ok(started.elapsed())
}

/// Cheap whole-table fingerprint: row count and sums of per-row hashes.
async fn fingerprint(url: &str) -> anyhow::Result<(i64, i64, String)> {
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    let row: (i64, i64, String) = sqlx::query_as(
        "SELECT count(*)::int8, sum(id)::int8, sum(hashtext(payload)::int8)::text FROM bench",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(row)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = env_u64("OPSBOOK_BENCH_ROWS", 3_500_000);
    let rounds = env_u64("OPSBOOK_BENCH_ROUNDS", 3).max(1);
    let stack = Stack::new();
    let pg = match stack.postgres().await {
        Ok(pg) => pg,
        Err(err @ ServiceError::Unavailable(_)) if !ops_tests::in_ci() => {
            eprintln!("skipping benchmark: {err}");
            println!("RESULT backup_overhead_pct=NaN restore_verified=false");
            return Ok(());
        }
        Err(err) => bail!("PostgreSQL unavailable: {err}"),
    };
    let url = url::Url::parse(pg.url())?;
    let database = pg.database().to_owned();

    let t = Instant::now();
    let mut conn = PgConnectOptions::from_str(pg.url())?.connect().await?;
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
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    println!(
        "generated {rows} rows, database {:.0} MB in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let mut admin_url = url.clone();
    admin_url.set_path("/postgres");
    let db = PgDatabaseBuilder::new(admin_url.as_str()).build()?;
    let dir = tempfile::tempdir()?;
    let name = Identifier::new(&database)?;

    // Warm the server's caches so the first timed dump is not penalised.
    let warm = bare_pg_dump(
        &url,
        &database,
        &dir.path().join("warm.dump"),
        Bare::FileArg,
    )
    .await?;
    std::fs::remove_file(dir.path().join("warm.dump"))?;
    println!("warm-up pg_dump {:.2} s", warm.as_secs_f64());

    let mut ours = Vec::new();
    let mut bare_file = Vec::new();
    let mut bare_redirect = Vec::new();
    let mut last_backup = None;
    for round in 0..rounds {
        for leg in 0..3 {
            // Rotate which of the three goes first each round.
            match (round + leg) % 3 {
                0 => {
                    if let Some(prev) = last_backup.take() {
                        let prev: std::path::PathBuf = prev;
                        std::fs::remove_file(&prev)?;
                        std::fs::remove_file(format!("{}.sha256", prev.display()))?;
                    }
                    let started = Instant::now();
                    let info = db
                        .backup(&BackupOptions::new(name.clone(), dir.path()))
                        .await?;
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "round {round}: opsbook backup {secs:.2} s ({:.0} MB, sha256 {})",
                        info.bytes as f64 / 1e6,
                        &info.sha256[..12]
                    );
                    ours.push(secs);
                    last_backup = Some(info.path);
                }
                n => {
                    let (how, label, into) = if n == 1 {
                        (Bare::FileArg, "pg_dump -Fc --file", &mut bare_file)
                    } else {
                        (Bare::Redirect, "pg_dump -Fc > file", &mut bare_redirect)
                    };
                    let file = dir.path().join("bare.dump");
                    let secs = bare_pg_dump(&url, &database, &file, how)
                        .await?
                        .as_secs_f64();
                    let bytes = std::fs::metadata(&file)?.len();
                    println!(
                        "round {round}: bare {label} {secs:.2} s ({:.0} MB)",
                        bytes as f64 / 1e6
                    );
                    std::fs::remove_file(&file)?;
                    into.push(secs);
                }
            }
        }
    }
    let m_ours = median(ours.clone());
    let (m_file, m_redirect) = (median(bare_file.clone()), median(bare_redirect.clone()));
    // The overhead is measured against the faster of the two bare baselines.
    let m_bare = m_file.min(m_redirect);
    let overhead = (m_ours - m_bare) / m_bare * 100.0;
    println!(
        "median opsbook {m_ours:.2} s, bare --file {m_file:.2} s, bare > file {m_redirect:.2} s; baseline = the faster bare run (opsbook {ours:.2?}, --file {bare_file:.2?}, > file {bare_redirect:.2?})"
    );

    // Restore the last opsbook backup into a new database and compare fingerprints.
    let backup = last_backup.context("no backup written")?;
    let restored_name = Identifier::new(&format!("{database}_restored"))?;
    let started = Instant::now();
    let outcome = db
        .restore(&RestoreOptions::new(&backup, restored_name.clone()))
        .await?;
    let mut restored_url = url.clone();
    restored_url.set_path(&format!("/{}", outcome.database));
    let source = fingerprint(pg.url()).await?;
    let copy = fingerprint(restored_url.as_str()).await?;
    let verified = source == copy && outcome.sha256.len() == 64;
    println!(
        "restore (verify checksum, scratch database, swap) {:.2} s; fingerprint {source:?} vs {copy:?}",
        started.elapsed().as_secs_f64()
    );
    println!("RESULT backup_overhead_pct={overhead:.1} restore_verified={verified}");
    Ok(())
}
