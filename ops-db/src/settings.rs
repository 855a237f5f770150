//! Read a setting; `ALTER SYSTEM SET` then `pg_reload_conf()`, reporting when a restart is needed.

use std::time::Duration;

use ops_core::database::SettingChange;
use sqlx::Connection as _;
use sqlx::Row as _;

use crate::database::PgDatabase;
use crate::error::Error;

/// A setting name quoted part by part (`pg_stat_statements.track` has two parts).
pub(crate) fn quote_setting_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

impl PgDatabase {
    pub(crate) async fn setting_impl(&self, name: &str) -> Result<String, Error> {
        self.timed("setting", async {
            let value: Option<String> =
                sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = lower($1)")
                    .bind(name)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(self.err("setting"))?;
            value.ok_or_else(|| Error::NotFound {
                operation: "setting",
                target: ops_core::text::quote(name),
            })
        })
        .await
    }

    pub(crate) async fn set_setting_impl(
        &self,
        name: &str,
        value: &str,
    ) -> Result<SettingChange, Error> {
        let operation = "set_setting";
        let invalid = |reason: &str| Error::Invalid {
            operation,
            target: ops_core::text::quote(name),
            reason: reason.to_owned(),
        };
        if value.contains('\0') {
            return Err(invalid("a setting value cannot contain NUL"));
        }
        let timeout = self.config().statement_timeout;
        self.timed(
            operation,
            Box::pin(async {
                // The catalog is the allow-list: an unknown name never reaches a statement.
                let row = sqlx::query(
                    "SELECT name, setting, context FROM pg_settings WHERE name = lower($1)",
                )
                .bind(name)
                .fetch_optional(self.pool())
                .await
                .map_err(self.err(operation))?;
                let Some(row) = row else {
                    return Err(invalid("unknown setting"));
                };
                let canonical: String = row.try_get("name").map_err(self.err(operation))?;
                let old: String = row.try_get("setting").map_err(self.err(operation))?;
                let context: String = row.try_get("context").map_err(self.err(operation))?;
                // The value is quoted as a literal by the server itself (format %L).
                let literal: String = sqlx::query_scalar("SELECT format('%L', $1::text)")
                    .bind(value)
                    .fetch_one(self.pool())
                    .await
                    .map_err(self.err(operation))?;
                let statement = format!(
                    "ALTER SYSTEM SET {} = {literal}",
                    quote_setting_name(&canonical)
                );
                // Without the right to reload, ALTER SYSTEM would write postgresql.auto.conf
                // and leave it unapplied until some later reload: refuse before writing.
                // (Function privileges are per database: this is the one we are in.)
                let may_reload: bool = sqlx::query_scalar(
                    "SELECT has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE')",
                )
                .fetch_one(self.pool())
                .await
                .map_err(self.err(operation))?;
                if !may_reload {
                    return Err(Error::Privilege {
                        operation,
                        target: ops_core::text::quote(&canonical),
                        grant: format!(
                            "{}; pg_reload_conf() is granted per database: grant it in the database opsbook connects to (nothing was changed)",
                            crate::error::required_grant(operation)
                        ),
                    });
                }
                // ALTER SYSTEM cannot run in a transaction block: simple protocol, autocommit.
                let mut conn = self.dedicated(operation, None, Some(timeout)).await?;
                let result = async {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await?;
                    sqlx::query("SELECT pg_reload_conf()")
                        .execute(&mut conn)
                        .await?;
                    Ok::<_, sqlx::Error>(())
                }
                .await;
                let _ = conn.close().await;
                result.map_err(self.err(operation))?;
                // Backends apply a reload when they next go idle: read it from a fresh connection
                // a few times until the value moved or the server says a restart is pending.
                let mut new = old.clone();
                let mut needs_restart = context == "postmaster";
                // No session settings on this one, so it sees the server's value.
                for _ in 0..20 {
                    let mut conn = self.dedicated(operation, None, None).await?;
                    let row = sqlx::query(
                        "SELECT setting, pending_restart FROM pg_settings WHERE name = $1",
                    )
                    .bind(&canonical)
                    .fetch_one(&mut conn)
                    .await;
                    let _ = conn.close().await;
                    let row = row.map_err(self.err(operation))?;
                    new = row.try_get("setting").map_err(self.err(operation))?;
                    let pending: bool = row
                        .try_get("pending_restart")
                        .map_err(self.err(operation))?;
                    needs_restart |= pending;
                    if new != old || needs_restart {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if needs_restart {
                    tracing::warn!(setting = %canonical, "setting needs a server restart to apply");
                }
                Ok(SettingChange::new(canonical, old, new, needs_restart))
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_names_are_quoted_per_part() {
        assert_eq!(quote_setting_name("work_mem"), "\"work_mem\"");
        assert_eq!(
            quote_setting_name("pg_stat_statements.track"),
            "\"pg_stat_statements\".\"track\""
        );
        assert_eq!(quote_setting_name("a\"b"), "\"a\"\"b\"");
    }
}
