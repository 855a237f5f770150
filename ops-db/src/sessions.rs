//! Sessions, terminate, cancel, long-running and blocked queries (`pg_stat_activity`).
//!
//! One filter query serves [`ops_core::Database::sessions`] (the read half) and
//! [`ops_core::Database::terminate`] (the act), so a dry run lists exactly who would go; the act
//! is also bound to the pids that were approved, each re-checked against the filter in the
//! same statement that terminates it, so nobody who arrived since is touched. It only
//! ever matches client backends (`backend_type = 'client backend'`), never the calling backend
//! (`pg_backend_pid()`) and never another connection of our own pool (its `application_name`).

use std::time::Duration;

use ops_core::Pid;
use ops_core::database::{BlockedQuery, Session, SessionFilter, SessionState};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use crate::connections::secs;
use crate::database::PgDatabase;
use crate::error::Error;

/// Columns of a session row.
const SESSION_COLUMNS: &str = "a.pid, a.usename::text AS usename, a.datname::text AS datname, \
     a.application_name, host(a.client_addr) AS client_addr, coalesce(a.state, 'unknown') AS state, \
     extract(epoch FROM now() - a.state_change)::float8 AS state_age, \
     extract(epoch FROM now() - a.query_start)::float8 AS query_age, \
     CASE WHEN a.wait_event IS NULL THEN NULL ELSE a.wait_event_type || ':' || a.wait_event END AS wait_event, \
     left(coalesce(a.query, ''), 2000) AS query";

/// The filter; `$1` states, `$2` idle seconds, `$3` running seconds, `$4` user, `$5` database,
/// `$6` application, `$7` our own `application_name`.
const SESSION_FILTER: &str = "a.backend_type = 'client backend' \
     AND a.pid <> pg_backend_pid() \
     AND a.application_name IS DISTINCT FROM $7 \
     AND (cardinality($1::text[]) = 0 OR a.state = ANY($1::text[])) \
     AND ($2::float8 IS NULL OR now() - a.state_change > make_interval(secs => $2::float8)) \
     AND ($3::float8 IS NULL OR now() - a.query_start > make_interval(secs => $3::float8)) \
     AND ($4::text IS NULL OR a.usename = $4::text) \
     AND ($5::text IS NULL OR a.datname = $5::text) \
     AND ($6::text IS NULL OR a.application_name = $6::text)";

fn session_from_row(row: &PgRow) -> Result<Session, sqlx::Error> {
    let pid: i32 = row.try_get("pid")?;
    let pid = Pid::new(pid).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let state: String = row.try_get("state")?;
    let mut session = Session::new(pid, SessionState::parse(&state));
    session.user = row.try_get("usename")?;
    session.database = row.try_get("datname")?;
    session.application = row
        .try_get::<Option<String>, _>("application_name")?
        .filter(|a| !a.is_empty());
    session.client_addr = row.try_get("client_addr")?;
    session.state_age = secs(row.try_get("state_age")?);
    session.query_age = secs(row.try_get("query_age")?);
    session.wait_event = row.try_get("wait_event")?;
    session.query = row.try_get("query")?;
    Ok(session)
}

/// Bind the filter parameters in order.
fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    filter: &SessionFilter,
    own_app: &str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let states: Vec<String> = filter
        .states
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    query
        .bind(states)
        .bind(filter.idle_longer_than.map(|d| d.as_secs_f64()))
        .bind(filter.running_longer_than.map(|d| d.as_secs_f64()))
        .bind(filter.user.as_ref().map(|u| u.as_str().to_owned()))
        .bind(filter.database.as_ref().map(|d| d.as_str().to_owned()))
        .bind(filter.application.clone())
        .bind(own_app.to_owned())
}

/// Counts the client backends whose state and query this role may not see: PostgreSQL shows
/// them only to superusers, members of `pg_read_all_stats` (`pg_monitor`) and roles with the
/// privileges of the session's role, and shows the others without state or query.
const HIDDEN_SESSIONS: &str = "SELECT count(*)::int8 FROM pg_stat_activity a \
     WHERE a.usesysid IS NOT NULL AND a.pid <> pg_backend_pid() \
     AND NOT pg_has_role('pg_read_all_stats', 'USAGE') AND NOT pg_has_role(a.usesysid, 'USAGE')";

impl PgDatabase {
    /// Fails with [`Error::Privilege`] when some sessions are hidden from this role: a filter
    /// on state or age would silently pass them over, and a report would call them healthy.
    async fn ensure_sessions_visible(&self, operation: &'static str) -> Result<(), Error> {
        let hidden: i64 = sqlx::query_scalar(HIDDEN_SESSIONS)
            .fetch_one(self.control())
            .await
            .map_err(self.err(operation))?;
        if hidden > 0 {
            return Err(Error::Privilege {
                operation,
                target: self.target().to_owned(),
                grant: format!(
                    "{hidden} session(s) of other roles are hidden from the operator role (no state, \
                     no query): {}",
                    crate::error::required_grant("sessions")
                ),
            });
        }
        Ok(())
    }

    pub(crate) async fn sessions_impl(
        &self,
        filter: &SessionFilter,
    ) -> Result<Vec<Session>, Error> {
        self.timed("sessions", async {
            self.ensure_sessions_visible("sessions").await?;
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM pg_stat_activity a WHERE {SESSION_FILTER} ORDER BY a.pid"
            );
            let rows = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, self.application_name())
                .fetch_all(self.control())
                .await
                .map_err(self.err("sessions"))?;
            rows.iter()
                .map(session_from_row)
                .collect::<Result<_, _>>()
                .map_err(self.err("sessions"))
        })
        .await
    }

    pub(crate) async fn terminate_impl(
        &self,
        pids: &[Pid],
        filter: &SessionFilter,
    ) -> Result<Vec<Session>, Error> {
        if pids.is_empty() {
            return Ok(Vec::new());
        }
        self.timed("terminate", async {
            // Select and terminate in one statement: the victims are the approved pids ($8)
            // that still pass the filter now.
            let sql = format!(
                "WITH victims AS MATERIALIZED (SELECT {SESSION_COLUMNS} FROM pg_stat_activity a \
                 WHERE {SESSION_FILTER} AND a.pid = ANY($8::int4[])) \
                 SELECT v.*, pg_terminate_backend(v.pid) AS terminated FROM victims v ORDER BY v.pid"
            );
            let approved: Vec<i32> = pids.iter().map(|p| p.get()).collect();
            let rows = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, self.application_name())
                .bind(approved)
                .fetch_all(self.control())
                .await
                .map_err(self.err("terminate"))?;
            let mut out = Vec::new();
            for row in &rows {
                let terminated: bool = row.try_get("terminated").map_err(self.err("terminate"))?;
                if terminated {
                    out.push(session_from_row(row).map_err(self.err("terminate"))?);
                }
            }
            tracing::info!(terminated = out.len(), "terminated sessions");
            Ok(out)
        })
        .await
    }

    pub(crate) async fn cancel_impl(&self, pid: Pid) -> Result<bool, Error> {
        self.timed("cancel", async {
            let cancelled: Option<bool> = sqlx::query_scalar(
                "SELECT CASE WHEN a.state = 'active' THEN pg_cancel_backend(a.pid) ELSE false END \
                 FROM pg_stat_activity a \
                 WHERE a.pid = $1 AND a.backend_type = 'client backend' \
                 AND a.pid <> pg_backend_pid() AND a.application_name IS DISTINCT FROM $2",
            )
            .bind(pid.get())
            .bind(self.application_name())
            .fetch_optional(self.control())
            .await
            .map_err(self.err("cancel"))?;
            Ok(cancelled.unwrap_or(false))
        })
        .await
    }

    pub(crate) async fn long_running_impl(&self, min: Duration) -> Result<Vec<Session>, Error> {
        let filter = SessionFilter::default()
            .with_state(SessionState::Active)
            .running_longer_than(min);
        self.sessions_impl(&filter).await
    }

    pub(crate) async fn blocked_impl(&self) -> Result<Vec<BlockedQuery>, Error> {
        self.timed("blocked", async {
            self.ensure_sessions_visible("blocked").await?;
            let sql = format!(
                "SELECT {SESSION_COLUMNS}, pg_blocking_pids(a.pid) AS blockers \
                 FROM pg_stat_activity a \
                 WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() \
                 AND cardinality(pg_blocking_pids(a.pid)) > 0 ORDER BY a.pid"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(self.control())
                .await
                .map_err(self.err("blocked"))?;
            let mut out = Vec::new();
            for row in &rows {
                let session = session_from_row(row).map_err(self.err("blocked"))?;
                let blockers: Vec<i32> = row.try_get("blockers").map_err(self.err("blocked"))?;
                let blockers = blockers
                    .into_iter()
                    .filter_map(|p| Pid::new(p).ok())
                    .collect();
                out.push(BlockedQuery::new(session, blockers));
            }
            Ok(out)
        })
        .await
    }
}
