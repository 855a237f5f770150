//! `VACUUM`, `ANALYZE`, `REINDEX`: quoted identifiers, never inside a transaction.

use std::time::Instant;

use ops_core::TableRef;
use ops_core::database::{Maintenance, MaintenanceOutcome};
use sqlx::Connection as _;

use crate::database::PgDatabase;
use crate::error::Error;

/// The statement for `op` on `table` (or the whole database `database`), identifiers quoted.
pub(crate) fn maintenance_sql(op: Maintenance, table: Option<&TableRef>, database: &str) -> String {
    match (op, table) {
        (Maintenance::Reindex, None) => format!(
            "REINDEX DATABASE {}",
            format_args!("\"{}\"", database.replace('"', "\"\""))
        ),
        (op, Some(table)) => format!("{} {}", op.sql_verb(), table.quoted()),
        (op, None) => op.sql_verb().to_owned(),
    }
}

impl PgDatabase {
    pub(crate) async fn maintain_impl(
        &self,
        op: Maintenance,
        table: Option<&TableRef>,
    ) -> Result<MaintenanceOutcome, Error> {
        let operation = "maintain";
        let target = table.map_or_else(|| self.target().to_owned(), ToString::to_string);
        let timeout = self.config().maintenance_timeout;
        let (database, bytes) = self
            .timed(operation, async {
                let database: String = sqlx::query_scalar("SELECT current_database()::text")
                    .fetch_one(self.pool())
                    .await
                    .map_err(self.err(operation))?;
                let bytes: Option<i64> = match table {
                    Some(t) => {
                        // VACUUM and ANALYZE skip a table this role may not maintain with only
                        // a warning: check first, so "done" means done.
                        let row: Option<(i64, bool)> = sqlx::query_as(
                            "SELECT pg_total_relation_size(c.oid)::int8, \
                             pg_has_role(c.relowner, 'USAGE') OR CASE \
                             WHEN current_setting('server_version_num')::int >= 170000 \
                             THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END \
                             FROM pg_class c \
                             WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'm', 'p')",
                        )
                        .bind(t.quoted())
                        .fetch_optional(self.pool())
                        .await
                        .map_err(self.err(operation))?;
                        if let Some((_, false)) = row {
                            return Err(Error::Privilege {
                                operation,
                                target: t.to_string(),
                                grant: crate::error::required_grant(operation).to_owned(),
                            });
                        }
                        row.map(|(bytes, _)| bytes)
                    }
                    None => Some(
                        sqlx::query_scalar("SELECT pg_database_size(current_database())::int8")
                            .fetch_one(self.pool())
                            .await
                            .map_err(self.err(operation))?,
                    ),
                };
                Ok((database, bytes))
            })
            .await?;
        let Some(bytes) = bytes else {
            return Err(Error::NotFound { operation, target });
        };
        let mut warnings = Vec::new();
        if op == Maintenance::VacuumFull {
            warnings.push(format!(
                "VACUUM FULL rewrites {target}: it needs up to {} MiB of free disk for the new copy \
                 and holds an ACCESS EXCLUSIVE lock (no reads or writes) until it finishes; \
                 on a full disk prefer plain VACUUM",
                bytes / (1024 * 1024)
            ));
        }
        if op == Maintenance::Reindex {
            warnings.push(format!(
                "REINDEX blocks writes to {target} while it rebuilds its indexes"
            ));
        }
        let sql = maintenance_sql(op, table, &database);
        let mut conn = self.dedicated(operation, None, Some(timeout)).await?;
        let started = Instant::now();
        // Simple query protocol, one statement, autocommit: never inside a transaction block.
        let result = self
            .within(operation, target.clone(), timeout, async {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                    .map_err(|source| Error::query(operation, target.clone(), source))
            })
            .await;
        let duration = started.elapsed();
        let _ = conn.close().await;
        result?;
        tracing::info!(statement = %sql, ?duration, "maintenance done");
        Ok(MaintenanceOutcome::new(sql, duration, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_statements_quote_identifiers() {
        let t = TableRef::new(
            Some("public".parse().unwrap()),
            ops_core::Identifier::new("users; DROP TABLE x").unwrap(),
        );
        assert_eq!(
            maintenance_sql(Maintenance::Vacuum { analyze: true }, Some(&t), "app"),
            r#"VACUUM (ANALYZE) "public"."users; DROP TABLE x""#
        );
        assert_eq!(
            maintenance_sql(Maintenance::Reindex, None, "a\"b"),
            r#"REINDEX DATABASE "a""b""#
        );
        assert_eq!(
            maintenance_sql(Maintenance::Analyze, None, "app"),
            "ANALYZE"
        );
    }
}
