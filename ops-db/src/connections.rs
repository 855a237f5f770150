//! Ping, server facts and connection counts (the pool-exhaustion signal).

use std::time::{Duration, Instant};

use ops_core::database::{ConnectionStats, Ping, ServerInfo, SessionState};
use sqlx::Row as _;

use crate::database::PgDatabase;
use crate::error::Error;

/// Seconds as a [`Duration`], `None` for NULL or nonsense.
pub(crate) fn secs(value: Option<f64>) -> Option<Duration> {
    value.and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok())
}

/// A non-negative count from the server.
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A non-negative small count from the server.
pub(crate) fn count32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

impl PgDatabase {
    pub(crate) async fn ping_impl(&self) -> Result<Ping, Error> {
        self.timed("ping", async {
            let mut conn = match self.control().acquire().await {
                Ok(conn) => conn,
                // The pool retries a refused connection (too_many_connections among them)
                // until it gives up without saying why; one direct attempt tells exhaustion
                // from a server that is down.
                Err(sqlx::Error::PoolTimedOut) => {
                    let mut direct = Box::pin(self.dedicated("ping", None, None)).await?;
                    let started = Instant::now();
                    let result = sqlx::query("SELECT 1").execute(&mut direct).await;
                    let _ = sqlx::Connection::close(direct).await;
                    result.map_err(self.err("ping"))?;
                    return Ok(Ping::new(started.elapsed()));
                }
                Err(e) => return Err(self.err("ping")(e)),
            };
            let started = Instant::now();
            sqlx::query("SELECT 1")
                .execute(&mut *conn)
                .await
                .map_err(self.err("ping"))?;
            Ok(Ping::new(started.elapsed()))
        })
        .await
    }

    pub(crate) async fn server_info_impl(&self) -> Result<ServerInfo, Error> {
        self.timed("server_info", async {
            let row = sqlx::query(
                "SELECT current_setting('server_version') AS version, \
                 extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime, \
                 current_setting('max_connections')::int8 AS max_connections, \
                 current_setting('superuser_reserved_connections')::int8 AS reserved, \
                 pg_is_in_recovery() AS in_recovery",
            )
            .fetch_one(self.control())
            .await
            .map_err(self.err("server_info"))?;
            let decode = self.err("server_info");
            let version: String = row.try_get("version").map_err(&decode)?;
            let uptime = secs(row.try_get("uptime").map_err(&decode)?).unwrap_or_default();
            let max: i64 = row.try_get("max_connections").map_err(&decode)?;
            let reserved: i64 = row.try_get("reserved").map_err(&decode)?;
            let mut info = ServerInfo::new(version, uptime, count32(max));
            info.reserved_connections = count32(reserved);
            info.in_recovery = row.try_get("in_recovery").map_err(&decode)?;
            Ok(info)
        })
        .await
    }

    pub(crate) async fn connection_stats_impl(&self) -> Result<ConnectionStats, Error> {
        self.timed("connection_stats", async {
            let decode = self.err("connection_stats");
            // `reserved_connections` exists from PostgreSQL 16 (missing_ok: NULL before).
            let (max, reserved): (i64, i64) = sqlx::query_as(
                "SELECT current_setting('max_connections')::int8, \
                 current_setting('superuser_reserved_connections')::int8 \
                 + coalesce(current_setting('reserved_connections', true)::int8, 0)",
            )
            .fetch_one(self.control())
            .await
            .map_err(&decode)?;
            let rows = sqlx::query(
                "SELECT coalesce(state, 'unknown') AS state, coalesce(datname::text, '') AS db, \
                 count(*)::int8 AS n, \
                 max(CASE WHEN state = 'idle in transaction' \
                     THEN extract(epoch FROM now() - state_change) END)::float8 AS oldest_iit \
                 FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2",
            )
            .fetch_all(self.control())
            .await
            .map_err(&decode)?;
            let mut stats = ConnectionStats::new(count32(max)).with_reserved(count32(reserved));
            for row in rows {
                let state_name: String = row.try_get("state").map_err(&decode)?;
                let db: String = row.try_get("db").map_err(&decode)?;
                let n = count32(row.try_get("n").map_err(&decode)?);
                let oldest = secs(row.try_get("oldest_iit").map_err(&decode)?);
                stats = stats.with(&SessionState::parse(&state_name), n);
                *stats.by_database.entry(db).or_default() += n;
                if let Some(age) = oldest {
                    stats.oldest_idle_in_transaction =
                        Some(stats.oldest_idle_in_transaction.map_or(age, |o| o.max(age)));
                }
            }
            Ok(stats)
        })
        .await
    }
}
