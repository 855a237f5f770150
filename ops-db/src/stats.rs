//! Slow queries (`pg_stat_statements`), database and table sizes, index usage, replication lag.

use ops_core::database::{
    DatabaseSize, IndexUsage, ReplicaLag, SlowQuery, SlowQueryOptions, TableSize,
};
use ops_core::{Identifier, TableRef};
use sqlx::Row as _;

use crate::connections::{count, secs};
use crate::database::PgDatabase;
use crate::error::Error;

/// How to enable `pg_stat_statements`.
pub(crate) const PG_STAT_STATEMENTS_HINT: &str = "pg_stat_statements is not available: add it to \
     shared_preload_libraries (restart needed), then run CREATE EXTENSION pg_stat_statements \
     in this database";

/// The time columns of `pg_stat_statements`: renamed in PostgreSQL 13.
pub(crate) fn statement_time_columns(server_version_num: i32) -> (&'static str, &'static str) {
    if server_version_num >= 130_000 {
        ("total_exec_time", "mean_exec_time")
    } else {
        ("total_time", "mean_time")
    }
}

/// The slow-query statement for a server version, extension schema and ordering.
pub(crate) fn slow_query_sql(
    server_version_num: i32,
    schema: &Identifier,
    by_mean: bool,
) -> String {
    let (total, mean) = statement_time_columns(server_version_num);
    let order = if by_mean { mean } else { total };
    format!(
        "SELECT left(query, 2000) AS query, calls::int8 AS calls, {total}::float8 AS total_ms, \
         {mean}::float8 AS mean_ms, rows::int8 AS rows \
         FROM {}.pg_stat_statements ORDER BY {order} DESC LIMIT $1",
        schema.quoted()
    )
}

/// Builds a table ref from catalog names (always valid: PostgreSQL names are at most 63 bytes).
fn table_ref(schema: &str, table: &str) -> Result<TableRef, sqlx::Error> {
    let decode = |e: ops_core::OpsError| sqlx::Error::Decode(Box::new(e));
    Ok(TableRef::new(
        Some(Identifier::new(schema).map_err(decode)?),
        Identifier::new(table).map_err(decode)?,
    ))
}

impl PgDatabase {
    pub(crate) async fn slow_queries_impl(
        &self,
        opts: &SlowQueryOptions,
    ) -> Result<Vec<SlowQuery>, Error> {
        self.timed("slow_queries", async {
            let decode = self.err("slow_queries");
            let version: i32 =
                sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
                    .fetch_one(self.pool())
                    .await
                    .map_err(&decode)?;
            let schema: Option<String> = sqlx::query_scalar(
                "SELECT n.nspname::text FROM pg_extension e \
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
            )
            .fetch_optional(self.pool())
            .await
            .map_err(&decode)?;
            let unsupported = || Error::Unsupported {
                operation: "slow_queries",
                target: self.target().to_owned(),
                hint: PG_STAT_STATEMENTS_HINT.to_owned(),
            };
            let Some(schema) = schema else {
                self.shared.slow_query_probe.observe(false);
                return Err(unsupported());
            };
            let schema = Identifier::new(&schema).map_err(|_| unsupported())?;
            let sql = slow_query_sql(version, &schema, opts.by_mean);
            let rows = match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(opts.limit))
                .fetch_all(self.pool())
                .await
            {
                Ok(rows) => rows,
                // Installed but not preloaded: "pg_stat_statements must be loaded via
                // shared_preload_libraries" (object_not_in_prerequisite_state).
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55000") => {
                    self.shared.slow_query_probe.observe(false);
                    return Err(unsupported());
                }
                Err(e) => return Err(decode(e)),
            };
            self.shared.slow_query_probe.observe(true);
            rows.iter()
                .map(|row| {
                    Ok(SlowQuery::new(
                        row.try_get::<String, _>("query")?,
                        count(row.try_get("calls")?),
                        row.try_get("total_ms")?,
                        row.try_get("mean_ms")?,
                        count(row.try_get("rows")?),
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&decode)
        })
        .await
    }

    pub(crate) async fn database_sizes_impl(&self) -> Result<Vec<DatabaseSize>, Error> {
        self.timed("database_sizes", async {
            let decode = self.err("database_sizes");
            let rows = sqlx::query(
                "SELECT datname::text AS name, pg_database_size(oid)::int8 AS bytes \
                 FROM pg_database WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') \
                 ORDER BY 2 DESC, 1",
            )
            .fetch_all(self.pool())
            .await
            .map_err(&decode)?;
            rows.iter()
                .map(|row| {
                    Ok(DatabaseSize::new(
                        row.try_get::<String, _>("name")?,
                        count(row.try_get("bytes")?),
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&decode)
        })
        .await
    }

    pub(crate) async fn table_sizes_impl(&self, limit: u32) -> Result<Vec<TableSize>, Error> {
        self.timed("table_sizes", async {
            let decode = self.err("table_sizes");
            // Bloat estimate: the dead-tuple share of the heap (cheap, no pgstattuple needed).
            let rows = sqlx::query(
                "SELECT schemaname::text AS schema, relname::text AS name, \
                 pg_total_relation_size(relid)::int8 AS total, pg_indexes_size(relid)::int8 AS idx, \
                 n_live_tup::int8 AS live, n_dead_tup::int8 AS dead, \
                 CASE WHEN n_live_tup + n_dead_tup = 0 THEN 0 \
                      ELSE (pg_relation_size(relid) * n_dead_tup / (n_live_tup + n_dead_tup)) END::int8 AS bloat \
                 FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC, 1, 2 LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(&decode)?;
            rows.iter()
                .map(|row| {
                    let table = table_ref(&row.try_get::<String, _>("schema")?, &row.try_get::<String, _>("name")?)?;
                    let mut size = TableSize::new(table, count(row.try_get("total")?));
                    size.index_bytes = count(row.try_get("idx")?);
                    size.live_rows = count(row.try_get("live")?);
                    size.dead_rows = count(row.try_get("dead")?);
                    size.bloat_bytes = count(row.try_get("bloat")?);
                    Ok(size)
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&decode)
        })
        .await
    }

    pub(crate) async fn index_usage_impl(&self) -> Result<Vec<IndexUsage>, Error> {
        self.timed("index_usage", async {
            let decode = self.err("index_usage");
            let rows = sqlx::query(
                "SELECT s.schemaname::text AS schema, s.relname::text AS tbl, s.indexrelname::text AS idx, \
                 s.idx_scan::int8 AS scans, pg_relation_size(s.indexrelid)::int8 AS bytes, \
                 (i.indisunique OR i.indisprimary) AS uniq \
                 FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid \
                 ORDER BY s.idx_scan, pg_relation_size(s.indexrelid) DESC, 1, 2, 3",
            )
            .fetch_all(self.pool())
            .await
            .map_err(&decode)?;
            rows.iter()
                .map(|row| {
                    let table = table_ref(&row.try_get::<String, _>("schema")?, &row.try_get::<String, _>("tbl")?)?;
                    let index = Identifier::new(&row.try_get::<String, _>("idx")?)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    Ok(IndexUsage::new(
                        table,
                        index,
                        count(row.try_get("scans")?),
                        count(row.try_get("bytes")?),
                        row.try_get("uniq")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&decode)
        })
        .await
    }

    pub(crate) async fn replication_impl(&self) -> Result<Vec<ReplicaLag>, Error> {
        self.timed("replication", async {
            let decode = self.err("replication");
            let rows = sqlx::query(
                "SELECT coalesce(nullif(application_name, ''), host(client_addr), pid::text) AS replica, \
                 coalesce(state, 'unknown') AS state, \
                 coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
                     ELSE pg_current_wal_lsn() END, replay_lsn), 0)::int8 AS lag_bytes, \
                 extract(epoch FROM replay_lag)::float8 AS replay_lag \
                 FROM pg_stat_replication ORDER BY 1",
            )
            .fetch_all(self.pool())
            .await
            .map_err(&decode)?;
            rows.iter()
                .map(|row| {
                    Ok(ReplicaLag::new(
                        row.try_get::<String, _>("replica")?,
                        row.try_get::<String, _>("state")?,
                        count(row.try_get("lag_bytes")?),
                        secs(row.try_get("replay_lag")?),
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&decode)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_stat_statements_columns_follow_the_server_version() {
        let public = Identifier::new("public").unwrap();
        let v12 = slow_query_sql(120_015, &public, false);
        assert!(v12.contains("total_time::float8") && v12.contains("ORDER BY total_time DESC"));
        assert!(!v12.contains("exec_time"));
        let v15 = slow_query_sql(150_008, &public, true);
        assert!(v15.contains("total_exec_time") && v15.contains("ORDER BY mean_exec_time DESC"));
        let odd = Identifier::new("ext\"s").unwrap();
        assert!(
            slow_query_sql(150_000, &odd, false).contains("FROM \"ext\"\"s\".pg_stat_statements")
        );
    }
}
