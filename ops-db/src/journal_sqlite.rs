//! [`SqliteJournal`]: the embedded default journal, one SQLite file in WAL mode.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::OpsError;
use ops_core::journal::{Journal, JournalCapabilities, JournalEntry, RunQuery, RunSummary};
use ops_core::run::RunId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use crate::error::Error;
use crate::journal_codec::{at_ns, decode, encode, summary, to_ops};

/// Migrations of the SQLite journal (embedded at compile time).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BACKEND: &str = "sqlite";

/// The embedded default [`Journal`]: one SQLite file, WAL mode, `synchronous = FULL` (an append
/// returns once it is on disk), schema managed by sqlx migrations. Several processes may
/// append to the same file.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::journal::{Journal, JournalEntry, JournalEvent};
/// use ops_core::run::{Mode, RunId};
/// let dir = tempfile::tempdir()?;
/// let journal = ops_db::SqliteJournal::open(dir.path().join("journal.db")).await?;
/// let run: RunId = "r1".parse()?;
/// journal
///     .append(&JournalEntry::new(run.clone(), "demo", Mode::DryRun, jiff::Timestamp::now(), JournalEvent::RunStarted))
///     .await?;
/// assert_eq!(journal.entries(&run).await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteJournal {
    /// Open (creating if needed) the journal file at `path` and apply migrations.
    ///
    /// # Errors
    /// [`Error::Query`] when the file cannot be opened; [`Error::Migrate`] when the schema
    /// cannot be brought up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Error::query("journal_open", path.display().to_string(), e))?;
        Self::migrate(pool, path).await
    }

    /// A journal in a private in-memory SQLite database (lost on drop; for tests and demos).
    ///
    /// # Errors
    /// As [`SqliteJournal::open`].
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let journal = ops_db::SqliteJournal::in_memory().await?;
    /// # Ok(()) }
    /// ```
    pub async fn in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| Error::query("journal_open", ":memory:", e))?;
        // One connection: every in-memory connection would be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| Error::query("journal_open", ":memory:", e))?;
        Self::migrate(pool, PathBuf::from(":memory:")).await
    }

    async fn migrate(pool: SqlitePool, path: PathBuf) -> Result<Self, Error> {
        MIGRATOR.run(&pool).await.map_err(|source| Error::Migrate {
            target: path.display().to_string(),
            source,
        })?;
        Ok(Self { pool, path })
    }

    /// The journal file.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let journal = ops_db::SqliteJournal::in_memory().await?;
    /// assert_eq!(journal.path(), std::path::Path::new(":memory:"));
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Journal for SqliteJournal {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> JournalCapabilities {
        let mut caps = JournalCapabilities::default();
        caps.durable = self.path != Path::new(":memory:");
        caps.shared = caps.durable;
        caps
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "sqlite", target = %entry.run_id))]
    async fn append(&self, entry: &JournalEntry) -> Result<(), OpsError> {
        let json = encode(entry).map_err(|e| to_ops(BACKEND, e))?;
        sqlx::query(
            "INSERT INTO opsbook_journal (run_id, runbook, event, at_ns, entry) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(entry.run_id.as_str())
        .bind(&entry.runbook)
        .bind(entry.event.name())
        .bind(at_ns(entry.at))
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(|e| to_ops(BACKEND, Error::query("journal_append", entry.run_id.to_string(), e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "sqlite", target = %run))]
    async fn entries(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT entry FROM opsbook_journal WHERE run_id = ?1 ORDER BY seq")
                .bind(run.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| {
                    to_ops(BACKEND, Error::query("journal_entries", run.to_string(), e))
                })?;
        rows.iter()
            .map(|text| decode("journal_entries", text))
            .collect::<Result<_, _>>()
            .map_err(|e| to_ops(BACKEND, e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "sqlite"))]
    async fn runs(&self, query: &RunQuery) -> Result<Vec<RunSummary>, OpsError> {
        let rows = sqlx::query(
            "SELECT s.entry AS start, \
               (SELECT f.entry FROM opsbook_journal f WHERE f.run_id = s.run_id \
                AND f.event = 'run_finished' ORDER BY f.seq DESC LIMIT 1) AS finish \
             FROM opsbook_journal s \
             WHERE s.event = 'run_started' \
               AND s.seq = (SELECT min(x.seq) FROM opsbook_journal x \
                            WHERE x.run_id = s.run_id AND x.event = 'run_started') \
               AND (?1 IS NULL OR s.runbook = ?1) AND (?2 IS NULL OR s.at_ns >= ?2) \
             ORDER BY s.at_ns DESC, s.run_id DESC LIMIT ?3",
        )
        .bind(query.runbook.as_deref())
        .bind(query.since.map(at_ns))
        .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            to_ops(
                BACKEND,
                Error::query("journal_runs", self.path.display().to_string(), e),
            )
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let start: String = row
                .try_get("start")
                .map_err(|e| to_ops(BACKEND, Error::query("journal_runs", "journal", e)))?;
            let finish: Option<String> = row
                .try_get("finish")
                .map_err(|e| to_ops(BACKEND, Error::query("journal_runs", "journal", e)))?;
            if let Some(s) = summary(&start, finish.as_deref()).map_err(|e| to_ops(BACKEND, e))? {
                out.push(s);
            }
        }
        Ok(out)
    }
}
