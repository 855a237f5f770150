//! Verified backup and restore with `pg_dump -Fc` / `pg_restore`.
//!
//! The tools run as argv (never a shell) with the connection in `PG*` environment variables
//! and the password in a passfile (`PGPASSFILE`, mode `0600`, in a private `0700` temp
//! directory removed when the tool has exited): never in argv, never in the environment,
//! where `/proc/<pid>/environ` and crash reports would show it. A dump streams through a
//! SHA-256 hasher into a hidden temp file in the destination directory, which is fsynced and
//! renamed into place after its `.sha256` sidecar (`sha256sum` format), and the directory is
//! fsynced (an error there fails the backup); on any failure, timeout or cancellation the
//! temp files are removed, so no partial backup is ever left under a final name.
//! A restore reads the dump once: it copies it into an unnamed temp file while hashing it,
//! compares the hash with the sidecar, and feeds `pg_restore` that copy on its standard
//! input, so what is restored is exactly what was verified even if the file changes
//! afterwards. It restores into a scratch database, checks it, then swaps it in under the
//! target name and keeps the previous database renamed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ops_core::Identifier;
use ops_core::database::{BackupInfo, BackupOptions, RestoreOptions, RestoreOutcome};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use sqlx::postgres::PgSslMode;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::process::Command;

use crate::database::PgDatabase;
use crate::error::Error;

/// Extension of dump files.
pub const DUMP_EXTENSION: &str = "dump";
/// Suffix of checksum sidecars, appended to the dump's file name.
pub const SIDECAR_SUFFIX: &str = ".sha256";
/// Progress is reported each time this many more bytes were written.
const PROGRESS_EVERY: u64 = 64 * 1024 * 1024;
/// Read buffer for dumps and checksums.
const BUF: usize = 1024 * 1024;

/// Progress of a running backup, given to [`PgDatabase::backup_with_progress`].
///
/// # Examples
/// ```
/// let p = ops_db::BackupProgress::default();
/// assert_eq!(p.bytes, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupProgress {
    /// Bytes of dump written so far.
    pub bytes: u64,
    /// Time since the dump started.
    pub elapsed: Duration,
    /// Whether the dump is complete (the last report).
    pub done: bool,
}

/// Removes the listed files when dropped unless disarmed: no partial file survives an error,
/// a timeout or a dropped future.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The sidecar path of `dump`.
pub(crate) fn sidecar_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

/// A file-name-safe rendering of a database name.
pub(crate) fn file_stem(database: &str) -> String {
    let mut out: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(48);
    if out.is_empty() { "db".to_owned() } else { out }
}

/// `name` truncated (on a char boundary) so that `name + suffix` fits 63 bytes.
pub(crate) fn with_suffix(name: &str, suffix: &str) -> String {
    let mut end = name.len().min(63 - suffix.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &name[..end])
}

/// A libpq connection-string value, single-quoted with `\` escapes.
pub(crate) fn conninfo_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn sslmode(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
        PgSslMode::Prefer => "prefer",
    }
}

/// Copies `reader` into `writer` through SHA-256, calling `each` with the bytes copied so far
/// after every chunk; returns (hex, bytes). The writer is flushed, not synced.
async fn copy_hashed(
    mut reader: impl AsyncRead + Unpin,
    writer: &mut (impl AsyncWrite + Unpin),
    mut each: impl FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut bytes = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).await?;
        bytes += n as u64;
        each(bytes);
    }
    writer.flush().await?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Streams `reader` through SHA-256; returns (hex, bytes).
async fn hash_reader(reader: impl AsyncRead + Unpin) -> std::io::Result<(String, u64)> {
    copy_hashed(reader, &mut tokio::io::sink(), |_| {}).await
}

/// Reads a sidecar: the first whitespace-separated token, 64 hex digits.
async fn read_sidecar(dump: &Path) -> Result<String, Error> {
    let sidecar = sidecar_path(dump);
    let text = tokio::fs::read_to_string(&sidecar)
        .await
        .map_err(|e| Error::io("verify_backup", sidecar.display().to_string(), e))?;
    let sum = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sum)
    } else {
        Err(Error::Invalid {
            operation: "verify_backup",
            target: sidecar.display().to_string(),
            reason: "the sidecar does not hold a sha256 checksum".to_owned(),
        })
    }
}

/// Backup facts from the file system (checksum from the sidecar, not recomputed).
async fn describe(dump: &Path, sha256: String) -> Result<BackupInfo, Error> {
    let meta = tokio::fs::metadata(dump)
        .await
        .map_err(|e| Error::io("list_backups", dump.display().to_string(), e))?;
    let mut info = BackupInfo::new(dump, sha256, meta.len());
    info.created_at = meta
        .modified()
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok());
    info.database = dump
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit_once('-'))
        .map(|(db, _)| db.to_owned());
    Ok(info)
}

/// Recomputes the checksum of `dump` and compares it with its sidecar.
pub(crate) async fn verify(dump: &Path) -> Result<BackupInfo, Error> {
    let target = dump.display().to_string();
    let expected = read_sidecar(dump).await?;
    let file = tokio::fs::File::open(dump)
        .await
        .map_err(|e| Error::io("verify_backup", target.clone(), e))?;
    let (actual, _) = hash_reader(file)
        .await
        .map_err(|e| Error::io("verify_backup", target.clone(), e))?;
    if actual != expected {
        return Err(Error::ChecksumMismatch {
            target,
            expected,
            actual,
        });
    }
    describe(dump, actual).await
}

/// Copies `dump` into an unnamed temp file (in the dump's directory, or the system temp
/// directory when that is not writable) while hashing it, and compares the hash with the
/// sidecar. The copy has no name, so nothing can change it after the check, and it vanishes
/// with its handle, even on a crash.
pub(crate) async fn verified_copy(dump: &Path) -> Result<(BackupInfo, std::fs::File), Error> {
    let operation = "restore";
    let target = dump.display().to_string();
    let expected = read_sidecar(dump).await?;
    let source = tokio::fs::File::open(dump)
        .await
        .map_err(|e| Error::io(operation, target.clone(), e))?;
    let near = dump.parent().filter(|p| !p.as_os_str().is_empty());
    let copy = match near.map(tempfile::tempfile_in) {
        Some(Ok(file)) => file,
        _ => tempfile::tempfile().map_err(|e| Error::io(operation, "temporary file", e))?,
    };
    let mut copy = tokio::fs::File::from_std(copy);
    let (actual, _) = copy_hashed(source, &mut copy, |_| {})
        .await
        .map_err(|e| Error::io(operation, target.clone(), e))?;
    if actual != expected {
        return Err(Error::ChecksumMismatch {
            target,
            expected,
            actual,
        });
    }
    let info = describe(dump, actual).await?;
    Ok((info, copy.into_std().await))
}

/// `file` rewound, as a child's standard input (the handle shares its offset with `file`).
fn rewound(file: &std::fs::File, operation: &'static str, target: &str) -> Result<Stdio, Error> {
    use std::io::Seek as _;
    let mut handle = file
        .try_clone()
        .map_err(|e| Error::io(operation, target.to_owned(), e))?;
    handle
        .rewind()
        .map_err(|e| Error::io(operation, target.to_owned(), e))?;
    Ok(Stdio::from(handle))
}

/// A passfile line matching every host, port, database and user: `\` and `:` escaped.
fn passfile_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:*:{escaped}\n")
}

/// A private directory (`0700`) holding a passfile (`0600`) with `password`, for one tool
/// run; both are removed when the returned guard drops.
fn passfile(
    operation: &'static str,
    target: &str,
    password: &str,
) -> Result<(tempfile::TempDir, PathBuf), Error> {
    use std::io::Write as _;
    if password.contains(['\n', '\r']) {
        return Err(Error::Invalid {
            operation,
            target: target.to_owned(),
            reason: "a password with a line break cannot be written to a passfile".to_owned(),
        });
    }
    let io = |e| Error::io(operation, "passfile", e);
    let mut dir = tempfile::Builder::new();
    dir.prefix("opsbook-pg-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        dir.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = dir.tempdir().map_err(io)?;
    let path = dir.path().join("pgpass");
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        file.mode(0o600);
    }
    let mut file = file.open(&path).map_err(io)?;
    file.write_all(passfile_line(password).as_bytes())
        .map_err(io)?;
    Ok((dir, path))
}

/// Dumps with a sidecar in `dir`, newest first; files without a sidecar are incomplete and skipped.
pub(crate) async fn list(dir: &Path) -> Result<Vec<BackupInfo>, Error> {
    let target = dir.display().to_string();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| Error::io("list_backups", target.clone(), e))?;
    let mut out = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| Error::io("list_backups", target.clone(), e))?
    {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.')
            || path.extension().and_then(|e| e.to_str()) != Some(DUMP_EXTENSION)
        {
            continue;
        }
        let Ok(sum) = read_sidecar(&path).await else {
            continue;
        };
        out.push(describe(&path, sum).await?);
    }
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.path.cmp(&a.path))
    });
    Ok(out)
}

/// Collects the last few KiB a tool printed on stderr.
fn collect_stderr(stderr: Option<tokio::process::ChildStderr>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if all.len() > 16 * 1024 {
                all.drain(..all.len() - 8 * 1024);
            }
        }
        let text = String::from_utf8_lossy(&all);
        let text = text.trim();
        let start = text.len().saturating_sub(2000);
        let mut start = start;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    })
}

/// fsync a directory, so the renames in it survive a crash.
async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

impl PgDatabase {
    /// A `pg_dump`/`pg_restore` command with the connection in the environment and the
    /// password in a passfile; keep the returned guard until the child has exited (dropping
    /// it removes the passfile and its directory).
    fn tool(
        &self,
        operation: &'static str,
        program: &Path,
        database: &str,
    ) -> Result<(Command, Option<tempfile::TempDir>), Error> {
        let shared = &self.shared;
        let mut cmd = Command::new(program);
        // Only our connection settings: drop inherited PG* variables (service files, options).
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("PG")) {
                cmd.env_remove(key);
            }
        }
        let connect = &shared.connect;
        match connect.get_socket() {
            Some(socket) => cmd.env("PGHOST", socket),
            None => cmd.env("PGHOST", connect.get_host()),
        };
        cmd.env("PGPORT", connect.get_port().to_string())
            .env("PGUSER", connect.get_username())
            .env("PGDATABASE", database)
            .env("PGAPPNAME", &shared.application_name)
            .env("PGSSLMODE", sslmode(connect.get_ssl_mode()))
            .env(
                "PGCONNECT_TIMEOUT",
                shared.config.acquire_timeout.as_secs().max(2).to_string(),
            );
        let mut guard = None;
        if let Some(password) = &shared.password {
            let (dir, path) = passfile(operation, database, password.expose_secret())?;
            cmd.env("PGPASSFILE", path);
            guard = Some(dir);
        }
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        Ok((cmd, guard))
    }

    /// Like [`ops_core::Database::backup`], calling `progress` every 64 MiB and at the end.
    ///
    /// # Errors
    /// As [`ops_core::Database::backup`]: [`ops_core::ErrorKind::Unavailable`] when `pg_dump` or
    /// the server fails, [`ops_core::ErrorKind::Timeout`] past the deadline,
    /// [`ops_core::ErrorKind::NotFound`] when the directory does not exist. No partial file is left.
    ///
    /// # Examples
    /// ```no_run
    /// use ops_core::database::BackupOptions;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = ops_db::PgDatabaseBuilder::from_env().build()?;
    /// let opts = BackupOptions::new("app".parse()?, "/var/backups/pg");
    /// let info = db
    ///     .backup_with_progress(&opts, &|p| eprintln!("{} MiB", p.bytes >> 20))
    ///     .await?;
    /// println!("{} sha256 {}", info.path.display(), info.sha256);
    /// # Ok(()) }
    /// ```
    pub async fn backup_with_progress(
        &self,
        opts: &BackupOptions,
        progress: &(dyn Fn(BackupProgress) + Send + Sync),
    ) -> Result<BackupInfo, ops_core::OpsError> {
        Ok(Box::pin(self.backup_impl(opts, progress)).await?)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one linear pipeline: spawn, stream, hash, fsync, rename"
    )]
    pub(crate) async fn backup_impl(
        &self,
        opts: &BackupOptions,
        progress: &(dyn Fn(BackupProgress) + Send + Sync),
    ) -> Result<BackupInfo, Error> {
        let operation = "backup";
        let target = opts.database.to_string();
        let dir_meta = tokio::fs::metadata(&opts.dir)
            .await
            .map_err(|e| Error::io(operation, opts.dir.display().to_string(), e))?;
        if !dir_meta.is_dir() {
            return Err(Error::Invalid {
                operation,
                target: opts.dir.display().to_string(),
                reason: "not a directory".to_owned(),
            });
        }
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let name = format!(
            "{}-{stamp}.{DUMP_EXTENSION}",
            file_stem(opts.database.as_str())
        );
        let final_path = opts.dir.join(&name);
        let final_sidecar = sidecar_path(&final_path);
        let nonce = format!("{:08x}", fastrand::u32(..));
        let tmp_path = opts.dir.join(format!(".{name}.partial-{nonce}"));
        let tmp_sidecar = opts
            .dir
            .join(format!(".{name}{SIDECAR_SUFFIX}.partial-{nonce}"));
        let timeout = opts.timeout.unwrap_or(self.config().backup_timeout);

        let mut cleanup = Cleanup(vec![tmp_path.clone(), tmp_sidecar.clone()]);
        let work = async {
            let (mut cmd, _passfile) =
                self.tool(operation, &self.config().pg_dump, opts.database.as_str())?;
            cmd.arg("--format=custom")
                .arg("--no-password")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(|source| Error::Spawn {
                operation,
                target: target.clone(),
                tool: self.config().pg_dump.display().to_string(),
                source,
            })?;
            let stderr = collect_stderr(child.stderr.take());
            let mut stdout = child.stdout.take().ok_or_else(|| Error::Io {
                operation,
                target: target.clone(),
                source: std::io::Error::other("pg_dump stdout was not captured"),
            })?;
            let io = |e| Error::io(operation, tmp_path.display().to_string(), e);
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_path)
                .await
                .map_err(io)?;
            let started = Instant::now();
            let mut next_report = PROGRESS_EVERY;
            let (sha256, bytes) = copy_hashed(&mut stdout, &mut file, |bytes| {
                if bytes >= next_report {
                    next_report += PROGRESS_EVERY;
                    let elapsed = started.elapsed();
                    tracing::info!(database = %target, mib = bytes >> 20, ?elapsed, "backup progress");
                    progress(BackupProgress {
                        bytes,
                        elapsed,
                        done: false,
                    });
                }
            })
            .await
            .map_err(io)?;
            let status = child.wait().await.map_err(io)?;
            let stderr = stderr.await.unwrap_or_default();
            if !status.success() {
                return Err(Error::Tool {
                    operation,
                    target: target.clone(),
                    tool: "pg_dump",
                    status: status.to_string(),
                    stderr,
                });
            }
            file.sync_all().await.map_err(io)?;
            drop(file);
            let sidecar_io = |e| Error::io(operation, tmp_sidecar.display().to_string(), e);
            let mut side = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_sidecar)
                .await
                .map_err(sidecar_io)?;
            side.write_all(format!("{sha256}  {name}\n").as_bytes())
                .await
                .map_err(sidecar_io)?;
            side.sync_all().await.map_err(sidecar_io)?;
            drop(side);
            // Sidecar first: a dump under its final name always has its checksum.
            tokio::fs::rename(&tmp_sidecar, &final_sidecar)
                .await
                .map_err(sidecar_io)?;
            tokio::fs::rename(&tmp_path, &final_path)
                .await
                .map_err(|e| {
                    let _ = std::fs::remove_file(&final_sidecar);
                    io(e)
                })?;
            // The renames are durable only once the directory is: a failure here fails the
            // backup (the files stay: they are complete and their checksum is right).
            let dir_io = |e| Error::io(operation, opts.dir.display().to_string(), e);
            sync_dir(&opts.dir).await.map_err(dir_io)?;
            progress(BackupProgress {
                bytes,
                elapsed: started.elapsed(),
                done: true,
            });
            tracing::info!(database = %target, bytes, file = %final_path.display(), "backup written");
            Ok((sha256, bytes))
        };
        let (sha256, bytes) = self
            .within(operation, target.clone(), timeout, Box::pin(work))
            .await?;
        cleanup.disarm();
        let mut info = BackupInfo::new(&final_path, sha256, bytes);
        info.created_at = Some(jiff::Timestamp::now());
        info.database = Some(target);
        Ok(info)
    }

    /// Runs `pg_restore` of the verified copy `dump` (on its standard input) into `database`.
    async fn pg_restore(
        &self,
        dump: &std::fs::File,
        database: &str,
        clean: bool,
    ) -> Result<(), Error> {
        let operation = "restore";
        let (mut cmd, _passfile) = self.tool(operation, &self.config().pg_restore, database)?;
        cmd.arg("--exit-on-error").arg("--no-password");
        if clean {
            cmd.arg("--clean").arg("--if-exists");
        }
        // --dbname as a quoted conninfo so no database name is ever parsed as options; no
        // file argument: the archive is the verified copy on standard input.
        cmd.arg(format!("--dbname=dbname={}", conninfo_quote(database)))
            .stdin(rewound(dump, operation, database)?)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            operation,
            target: database.to_owned(),
            tool: self.config().pg_restore.display().to_string(),
            source,
        })?;
        let stderr = collect_stderr(child.stderr.take());
        let status = child
            .wait()
            .await
            .map_err(|e| Error::io(operation, database.to_owned(), e))?;
        let stderr = stderr.await.unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(Error::Tool {
                operation,
                target: database.to_owned(),
                tool: "pg_restore",
                status: status.to_string(),
                stderr,
            })
        }
    }

    /// Table-data entries listed in the table of contents of the verified copy `dump`
    /// (`target` names the backup in errors).
    async fn dump_table_count(&self, dump: &std::fs::File, target: &str) -> Result<u64, Error> {
        let output = Command::new(&self.config().pg_restore)
            .arg("--list")
            .stdin(rewound(dump, "restore", target)?)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| Error::Spawn {
                operation: "restore",
                target: target.to_owned(),
                tool: self.config().pg_restore.display().to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Tool {
                operation: "restore",
                target: target.to_owned(),
                tool: "pg_restore",
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text
            .lines()
            .filter(|l| !l.starts_with(';') && l.contains(" TABLE DATA "))
            .count() as u64)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one linear procedure: verify, scratch restore, check, swap"
    )]
    pub(crate) async fn restore_impl(
        &self,
        opts: &RestoreOptions,
    ) -> Result<RestoreOutcome, Error> {
        let operation = "restore";
        let target = opts.into.to_string();
        // Checksum first, on a private copy that is what gets restored: a mismatch touches
        // nothing, and a file changed after the check changes nothing.
        let backup = opts.backup.display().to_string();
        let (info, dump) = verified_copy(&opts.backup).await?;
        let timeout = opts.timeout.unwrap_or(self.config().backup_timeout);
        let work = async {
            let statement_timeout = self.config().statement_timeout;
            let maintenance_db = self.config().maintenance_database.clone();
            let mut admin = self
                .dedicated(operation, Some(&maintenance_db), Some(statement_timeout))
                .await?;
            let q = |source| Error::query(operation, target.clone(), source);
            let exists = |name: String| {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(name)
            };
            let into_exists = exists(target.clone())
                .fetch_one(&mut admin)
                .await
                .map_err(q)?;
            let into_q = opts.into.quoted();
            if !opts.swap {
                if !into_exists {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {into_q} TEMPLATE template0"
                    )))
                    .execute(&mut admin)
                    .await
                    .map_err(q)?;
                }
                let _ = admin.close().await;
                self.pg_restore(&dump, opts.into.as_str(), into_exists)
                    .await?;
                return Ok(RestoreOutcome::new(
                    target.clone(),
                    None,
                    info.sha256.clone(),
                ));
            }

            let scratch = with_suffix(
                opts.into.as_str(),
                &format!("_restore_{:08x}", fastrand::u32(..)),
            );
            let scratch_id = Identifier::new(&scratch).map_err(|_| Error::Invalid {
                operation,
                target: scratch.clone(),
                reason: "scratch database name".to_owned(),
            })?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {} TEMPLATE template0",
                scratch_id.quoted()
            )))
            .execute(&mut admin)
            .await
            .map_err(q)?;
            let restored = async {
                self.pg_restore(&dump, &scratch, false).await?;
                let expected = self.dump_table_count(&dump, &backup).await?;
                let mut conn = self
                    .dedicated(operation, Some(&scratch), Some(statement_timeout))
                    .await?;
                let tables: i64 = sqlx::query_scalar(
                    "SELECT count(*)::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                     AND n.nspname NOT LIKE 'pg_toast%'",
                )
                .fetch_one(&mut conn)
                .await
                .map_err(q)?;
                let _ = conn.close().await;
                if u64::try_from(tables).unwrap_or(0) < expected {
                    return Err(Error::RestoreVerification {
                        target: target.clone(),
                        reason: format!(
                            "the scratch database {scratch} has {tables} tables, the dump holds data for {expected}"
                        ),
                    });
                }
                Ok(())
            }
            .await;
            if let Err(e) = restored {
                // The target was not touched; the scratch database goes, or the error says
                // it is left behind.
                return match sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    scratch_id.quoted()
                )))
                .execute(&mut admin)
                .await
                {
                    Ok(_) => Err(e),
                    Err(drop_err) => Err(Error::Compensation {
                        operation,
                        target: target.clone(),
                        leftover: format!(
                            "the scratch database {scratch} could not be dropped ({drop_err}); drop it by hand"
                        ),
                        source: Box::new(e),
                    }),
                };
            }

            // Swap: move the current database aside (kept for rollback) and rename scratch in.
            let mut previous = None;
            if into_exists {
                let stamp = jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string();
                let old = with_suffix(opts.into.as_str(), &format!("_old_{stamp}"));
                let old_q = Identifier::new(&old)
                    .map_err(|_| Error::Invalid {
                        operation,
                        target: old.clone(),
                        reason: "renamed database name".to_owned(),
                    })?
                    .quoted();
                // Both renames in one transaction: PostgreSQL renames databases
                // transactionally, so the application's name always names a database (the old
                // one or the restored one), even if this is interrupted or times out (a closed
                // connection rolls the transaction back).
                let swap = format!(
                    "ALTER DATABASE {into_q} RENAME TO {old_q}; ALTER DATABASE {} RENAME TO {into_q}",
                    scratch_id.quoted()
                );
                let mut attempt = 0;
                loop {
                    let mut tx = admin.begin().await.map_err(q)?;
                    // Sessions on the database being replaced (ours included) must go.
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(opts.into.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(q)?;
                    match sqlx::raw_sql(sqlx::AssertSqlSafe(swap.clone()))
                        .execute(&mut *tx)
                        .await
                    {
                        Ok(_) => {
                            tx.commit().await.map_err(q)?;
                            break;
                        }
                        // A terminated session has not exited yet: roll back, try again.
                        Err(sqlx::Error::Database(db))
                            if db.code().as_deref() == Some("55006") && attempt < 50 =>
                        {
                            attempt += 1;
                            tx.rollback().await.map_err(q)?;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(q(e)),
                    }
                }
                previous = Some(old);
            } else {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {} RENAME TO {into_q}",
                    scratch_id.quoted()
                )))
                .execute(&mut admin)
                .await
                .map_err(q)?;
            }
            let _ = admin.close().await;
            tracing::info!(database = %target, previous = ?previous, "restore swapped in");
            Ok(RestoreOutcome::new(
                target.clone(),
                previous,
                info.sha256.clone(),
            ))
        };
        self.within(operation, target.clone(), timeout, Box::pin(work))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_limits_and_file_systems() {
        let long = "é".repeat(31);
        let scratch = with_suffix(&long, "_restore_0123abcd");
        assert!(scratch.len() <= 63);
        assert!(scratch.ends_with("_restore_0123abcd"));
        assert_eq!(file_stem("users; DROP TABLE x"), "users__DROP_TABLE_x");
        assert_eq!(file_stem("../../etc"), "______etc");
        assert_eq!(conninfo_quote(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(
            sidecar_path(Path::new("/b/x.dump")),
            Path::new("/b/x.dump.sha256")
        );
    }

    #[test]
    fn passfile_lines_escape_colons_and_backslashes() {
        assert_eq!(passfile_line(r"a:b\c"), "*:*:*:*:a\\:b\\\\c\n");
        let (dir, path) = passfile("backup", "db", "pw").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "*:*:*:*:pw\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(dir.path()), 0o700);
        }
        let kept = dir.path().to_owned();
        drop(dir);
        assert!(!kept.exists(), "the passfile goes with its guard");
        assert!(passfile("backup", "db", "a\nb").is_err());
    }

    #[tokio::test]
    async fn verify_refuses_a_tampered_file_and_list_skips_incomplete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("app-20260101T000000.000Z.dump");
        tokio::fs::write(&dump, b"PGDMP fake").await.unwrap();
        let (sum, _) = hash_reader(&b"PGDMP fake"[..]).await.unwrap();
        tokio::fs::write(sidecar_path(&dump), format!("{sum}  x\n"))
            .await
            .unwrap();
        let info = verify(&dump).await.unwrap();
        assert_eq!(info.sha256, sum);
        assert_eq!(info.database.as_deref(), Some("app"));
        tokio::fs::write(dir.path().join("other.dump"), b"no sidecar")
            .await
            .unwrap();
        tokio::fs::write(dir.path().join(".x.dump.partial-1"), b"partial")
            .await
            .unwrap();
        let listed = list(dir.path()).await.unwrap();
        assert_eq!(listed.len(), 1);
        tokio::fs::write(&dump, b"PGDMP fakf").await.unwrap();
        let err: ops_core::OpsError = verify(&dump).await.unwrap_err().into();
        assert_eq!(err.kind(), ops_core::ErrorKind::Conflict);
        let missing: ops_core::OpsError = verify(&dir.path().join("other.dump"))
            .await
            .unwrap_err()
            .into();
        assert_eq!(missing.kind(), ops_core::ErrorKind::NotFound);
    }
}
