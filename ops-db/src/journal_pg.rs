//! [`PgJournal`]: the journal in PostgreSQL (schema `opsbook`), shared by many operators.

use std::time::Duration;

use async_trait::async_trait;
use ops_core::OpsError;
use ops_core::journal::{Journal, JournalCapabilities, JournalEntry, RunQuery, RunSummary};
use ops_core::run::RunId;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row as _};

use crate::database::PgDatabase;
use crate::error::Error;
use crate::journal_codec::{at_ns, decode, encode, summary, to_ops};

/// Migrations of the PostgreSQL journal (embedded at compile time).
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/pg");

const BACKEND: &str = "pg";

/// A [`Journal`] in PostgreSQL: table `opsbook.journal`, migrations tracked in
/// `opsbook._journal_migrations` (so they never mix with the application's own sqlx migrations).
///
/// # Examples
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ops_core::Journal;
/// let db = ops_db::PgDatabaseBuilder::from_env().build()?;
/// let journal: Arc<dyn Journal> = Arc::new(ops_db::PgJournal::open(&db).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgJournal {
    pool: PgPool,
    target: String,
}

impl PgJournal {
    /// A journal on the same pool (and deadlines) as `db`; applies migrations.
    ///
    /// # Errors
    /// [`Error::Migrate`] when the schema cannot be created or upgraded (e.g. the server is down).
    pub async fn open(db: &PgDatabase) -> Result<Self, Error> {
        Self::from_client(db.pool().clone(), db.target().to_owned()).await
    }

    /// A journal at `url` with its own small pool; applies migrations.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL; as [`PgJournal::open`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let db = crate::PgDatabaseBuilder::new(url)
            .with_max_connections(2)
            .build()?;
        let target = db.target().to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(
                db.shared
                    .connect
                    .clone()
                    .application_name(db.application_name()),
            );
        Self::from_client(pool, target).await
    }

    /// A journal on an existing pool; `target` names the server in errors (no credentials).
    ///
    /// # Errors
    /// As [`PgJournal::open`].
    pub async fn from_client(pool: PgPool, target: String) -> Result<Self, Error> {
        let mut migrator = Migrator::with_migrations(MIGRATIONS.iter().cloned().collect());
        migrator.create_schema("opsbook");
        migrator.dangerous_set_table_name("opsbook._journal_migrations");
        migrator.run(&pool).await.map_err(|source| Error::Migrate {
            target: target.clone(),
            source,
        })?;
        Ok(Self { pool, target })
    }
}

#[async_trait]
impl Journal for PgJournal {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> JournalCapabilities {
        let mut caps = JournalCapabilities::default();
        caps.durable = true;
        caps.shared = true;
        caps
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %entry.run_id))]
    async fn append(&self, entry: &JournalEntry) -> Result<(), OpsError> {
        let json = encode(entry).map_err(|e| to_ops(BACKEND, e))?;
        sqlx::query(
            "INSERT INTO opsbook.journal (run_id, runbook, event, at_ns, entry) VALUES ($1, $2, $3, $4, $5)",
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

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %run))]
    async fn entries(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT entry FROM opsbook.journal WHERE run_id = $1 ORDER BY seq")
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

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg"))]
    async fn runs(&self, query: &RunQuery) -> Result<Vec<RunSummary>, OpsError> {
        let rows = sqlx::query(
            "SELECT s.entry AS start, \
               (SELECT f.entry FROM opsbook.journal f WHERE f.run_id = s.run_id \
                AND f.event = 'run_finished' ORDER BY f.seq DESC LIMIT 1) AS finish \
             FROM opsbook.journal s \
             WHERE s.event = 'run_started' \
               AND s.seq = (SELECT min(x.seq) FROM opsbook.journal x \
                            WHERE x.run_id = s.run_id AND x.event = 'run_started') \
               AND ($1::text IS NULL OR s.runbook = $1::text) \
               AND ($2::int8 IS NULL OR s.at_ns >= $2::int8) \
             ORDER BY s.at_ns DESC, s.run_id COLLATE \"C\" DESC LIMIT $3",
        )
        .bind(query.runbook.as_deref())
        .bind(query.since.map(at_ns))
        .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            to_ops(
                BACKEND,
                Error::query("journal_runs", self.target.clone(), e),
            )
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let start: String = row.try_get("start").map_err(|e| {
                to_ops(
                    BACKEND,
                    Error::query("journal_runs", self.target.clone(), e),
                )
            })?;
            let finish: Option<String> = row.try_get("finish").map_err(|e| {
                to_ops(
                    BACKEND,
                    Error::query("journal_runs", self.target.clone(), e),
                )
            })?;
            if let Some(s) = summary(&start, finish.as_deref()).map_err(|e| to_ops(BACKEND, e))? {
                out.push(s);
            }
        }
        Ok(out)
    }
}
