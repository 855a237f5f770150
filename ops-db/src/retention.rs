//! Delete rows older than an age in short batches within a row budget.

use ops_core::database::{RowRetention, RowsDeleted};

use crate::connections::count;
use crate::database::PgDatabase;
use crate::error::Error;

/// `WHERE` clause comparing the quoted column (of `alias`, when given) with `now()` minus
/// `$1` seconds.
fn older_than_clause(retention: &RowRetention, alias: Option<&str>) -> String {
    let column = retention.column.quoted();
    let column = match alias {
        Some(alias) => format!("{alias}.{column}"),
        None => column,
    };
    format!("{column} < now() - make_interval(secs => $1::float8)")
}

/// The count statement (read half).
pub(crate) fn count_sql(retention: &RowRetention) -> String {
    format!(
        "SELECT count(*)::int8 FROM {} WHERE {}",
        retention.table.quoted(),
        older_than_clause(retention, None)
    )
}

/// One batch: at most `$2` rows, in its own short transaction.
///
/// A `ctid` names a row only within one physical relation: on a partitioned table or an
/// inheritance parent the same `ctid` exists in every partition, so the rows are named by
/// `(tableoid, ctid)` (chosen once, in a materialized CTE), and the outer statement checks
/// the age again, so a row that is not old is never deleted whatever the batch named. The
/// `ctid = ANY(..)` term keeps the outer scan a TID scan of each partition.
pub(crate) fn batch_sql(retention: &RowRetention) -> String {
    let table = retention.table.quoted();
    format!(
        "WITH opsbook_batch AS MATERIALIZED (\
         SELECT tableoid AS opsbook_rel, ctid AS opsbook_tid FROM {table} WHERE {} LIMIT $2) \
         DELETE FROM {table} AS opsbook_row \
         WHERE opsbook_row.ctid = ANY(ARRAY(SELECT opsbook_tid FROM opsbook_batch)) \
         AND (opsbook_row.tableoid, opsbook_row.ctid) IN (SELECT opsbook_rel, opsbook_tid FROM opsbook_batch) \
         AND {}",
        older_than_clause(retention, None),
        older_than_clause(retention, Some("opsbook_row"))
    )
}

impl PgDatabase {
    /// Fails with `NotFound` unless the table and column exist.
    async fn check_retention_target(
        &self,
        operation: &'static str,
        retention: &RowRetention,
    ) -> Result<(), Error> {
        self.timed(operation, async {
            let found: Option<bool> = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = $2 \
                 AND attnum > 0 AND NOT attisdropped) FROM pg_class c WHERE c.oid = to_regclass($1)",
            )
            .bind(retention.table.quoted())
            .bind(retention.column.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(self.err(operation))?;
            match found {
                Some(true) => Ok(()),
                Some(false) => Err(Error::NotFound {
                    operation,
                    target: format!("{}.{}", retention.table, retention.column),
                }),
                None => Err(Error::NotFound {
                    operation,
                    target: retention.table.to_string(),
                }),
            }
        })
        .await
    }

    pub(crate) async fn count_older_than_impl(
        &self,
        retention: &RowRetention,
    ) -> Result<u64, Error> {
        self.check_retention_target("count_older_than", retention)
            .await?;
        self.timed("count_older_than", async {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql(retention)))
                .bind(retention.older_than.as_secs_f64())
                .fetch_one(self.pool())
                .await
                .map_err(self.err("count_older_than"))?;
            Ok(count(n))
        })
        .await
    }

    pub(crate) async fn delete_older_than_impl(
        &self,
        retention: &RowRetention,
    ) -> Result<RowsDeleted, Error> {
        let operation = "delete_older_than";
        self.check_retention_target(operation, retention).await?;
        let sql = batch_sql(retention);
        let mut deleted = 0u64;
        let mut batches = 0u64;
        let batch_size = u64::from(retention.batch_size.max(1));
        loop {
            let remaining_budget = retention.max_rows.map(|m| m.saturating_sub(deleted));
            if remaining_budget == Some(0) {
                // Budget spent: complete only if nothing old is left.
                let left = self.count_older_than_impl(retention).await;
                let complete = matches!(left, Ok(0));
                return Ok(RowsDeleted::new(deleted, batches, complete));
            }
            let limit = remaining_budget.map_or(batch_size, |r| r.min(batch_size));
            let result = self
                .timed(operation, async {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(retention.older_than.as_secs_f64())
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .execute(self.pool())
                        .await
                        .map_err(self.err(operation))
                })
                .await;
            let n = match result {
                Ok(done) => done.rows_affected(),
                Err(source) if batches > 0 => {
                    return Err(Error::PartialDelete {
                        operation,
                        target: retention.table.to_string(),
                        deleted,
                        batches,
                        source: Box::new(source),
                    });
                }
                Err(e) => return Err(e),
            };
            deleted += n;
            batches += 1;
            tracing::debug!(
                batch = batches,
                rows = n,
                total = deleted,
                "retention batch"
            );
            if n < limit {
                return Ok(RowsDeleted::new(deleted, batches, true));
            }
            if !retention.pause.is_zero() {
                tokio::time::sleep(retention.pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn retention_statements_quote_table_and_column() {
        let r = RowRetention::new(
            "public.events; DROP TABLE x".parse().unwrap(),
            ops_core::Identifier::new("created\"at").unwrap(),
            Duration::from_secs(60),
        );
        let sql = batch_sql(&r);
        assert!(
            sql.contains(r#"DELETE FROM "public"."events; DROP TABLE x" AS opsbook_row WHERE"#),
            "{sql}"
        );
        assert!(sql.contains(r#" "created""at" < now()"#), "{sql}");
        assert!(
            sql.contains(r#"AND opsbook_row."created""at" < now()"#),
            "the outer statement checks the age again: {sql}"
        );
        assert!(
            sql.contains("(opsbook_row.tableoid, opsbook_row.ctid) IN"),
            "{sql}"
        );
        assert!(sql.contains("LIMIT $2"));
    }
}
