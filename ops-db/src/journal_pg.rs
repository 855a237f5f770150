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
    /// A journal on the server of `db`, on a pool of its own (never the remediated
    /// database's): one connection is opened now and held (no idle timeout, no maximum
    /// lifetime, the only one the journal uses), so the journal keeps recording while that server refuses new connections,
    /// the very incident `db_connections` exists for. Applies migrations (DDL); for a dry run
    /// or a read-only operator use [`PgJournal::open_existing`].
    ///
    /// A journal on another server than the one being remediated ([`PgJournal::connect`]) is
    /// the production setup: it survives that server's loss too.
    ///
    /// # Errors
    /// [`Error::Query`] when the server cannot be reached; [`Error::Migrate`] when the schema
    /// cannot be created or upgraded.
    pub async fn open(db: &PgDatabase) -> Result<Self, Error> {
        let pool = Self::own_pool(db).await?;
        Self::from_client(pool, db.target().to_owned()).await
    }

    /// As [`PgJournal::open`], without any DDL: the schema must exist and be current (made by
    /// an earlier [`PgJournal::open`] or [`PgJournal::connect`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the schema is missing or older than this version; as
    /// [`PgJournal::open`].
    pub async fn open_existing(db: &PgDatabase) -> Result<Self, Error> {
        let pool = Self::own_pool(db).await?;
        Self::existing(pool, db.target().to_owned()).await
    }

    /// A journal at `url` on its own pool (one connection held, as [`PgJournal::open`]);
    /// applies migrations.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL; as [`PgJournal::open`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let db = crate::PgDatabaseBuilder::new(url)
            .with_max_connections(2)
            .build()?;
        Self::open(&db).await
    }

    /// As [`PgJournal::connect`], without any DDL (see [`PgJournal::open_existing`]).
    ///
    /// # Errors
    /// As [`PgJournal::open_existing`].
    pub async fn connect_existing(url: &str) -> Result<Self, Error> {
        let db = crate::PgDatabaseBuilder::new(url)
            .with_max_connections(2)
            .build()?;
        Self::open_existing(&db).await
    }

    /// One connection, opened now and kept. One, not more: with room for a second, a pool
    /// whose connection is still on its way back would try to open another, which a
    /// saturated server refuses, instead of waiting the moment it takes to come back.
    async fn own_pool(db: &PgDatabase) -> Result<PgPool, Error> {
        PgPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            // The database's own application_name: its session listings and terminations
            // never see, let alone end, the journal's connection.
            .connect_with(
                db.shared
                    .connect
                    .clone()
                    .application_name(db.application_name()),
            )
            .await
            .map_err(|e| Error::query("journal_connect", db.target().to_owned(), e))
    }

    /// A journal on an existing pool; `target` names the server in errors (no credentials).
    /// Applies migrations.
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

    /// A journal on `pool` whose schema must already be current; runs no DDL.
    async fn existing(pool: PgPool, target: String) -> Result<Self, Error> {
        let latest = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default();
        let applied: Option<i64> = sqlx::query_scalar(
            "SELECT max(version) FROM opsbook._journal_migrations WHERE success",
        )
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
        if applied != Some(latest) {
            return Err(Error::NotFound {
                operation: "journal_open",
                target: format!(
                    "the opsbook journal schema at version {latest} on {target} (create it with PgJournal::open)"
                ),
            });
        }
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
