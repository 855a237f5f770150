//! The service's dependencies, Postgres and Redis, and their readiness checks.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Bound on one readiness check and on connecting.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Postgres and Redis, each optional.
#[derive(Debug)]
pub(crate) struct Deps {
    /// Connection pool, connecting lazily.
    pub(crate) postgres: Option<PgPool>,
    /// Redis client, connecting lazily.
    pub(crate) redis: Option<RedisHandle>,
}

/// Result of checking one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not configured; does not count against readiness.
    NotConfigured,
    /// Answered in time.
    Ok,
    /// Failed or timed out, with the reason.
    Down(String),
}

impl Deps {
    /// Builds lazy clients from the URLs; fails only on a malformed URL.
    pub(crate) fn new(database_url: Option<&str>, redis_url: Option<&str>) -> Result<Self, String> {
        let postgres = database_url
            .map(|url| {
                PgPoolOptions::new()
                    .max_connections(5)
                    .acquire_timeout(CHECK_TIMEOUT)
                    .idle_timeout(Duration::from_secs(30))
                    .connect_lazy(url)
                    .map_err(|err| format!("DATABASE_URL is invalid: {err}"))
            })
            .transpose()?;
        let redis = redis_url
            .map(|url| {
                redis::Client::open(url)
                    .map(RedisHandle::new)
                    .map_err(|err| format!("REDIS_URL is invalid: {err}"))
            })
            .transpose()?;
        Ok(Self { postgres, redis })
    }

    /// Whether a database URL was given.
    pub(crate) fn postgres_configured(&self) -> bool {
        self.postgres.is_some()
    }

    /// Whether a Redis URL was given.
    pub(crate) fn redis_configured(&self) -> bool {
        self.redis.is_some()
    }

    /// Runs `SELECT 1`, bounded by [`CHECK_TIMEOUT`].
    pub(crate) async fn check_postgres(&self) -> Check {
        let Some(pool) = &self.postgres else {
            return Check::NotConfigured;
        };
        match tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(pool)).await {
            Ok(Ok(_)) => Check::Ok,
            Ok(Err(err)) => Check::Down(err.to_string()),
            Err(_) => Check::Down(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    }

    /// Sends `PING`, bounded by [`CHECK_TIMEOUT`].
    pub(crate) async fn check_redis(&self) -> Check {
        let Some(redis) = &self.redis else {
            return Check::NotConfigured;
        };
        let ping = async {
            let mut conn = redis.connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => Check::Ok,
            Ok(Err(err)) => Check::Down(err.to_string()),
            Err(_) => Check::Down(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    }
}

/// A Redis client with one shared, self-reconnecting connection made on first use, so the
/// service starts while Redis is still down.
#[derive(Debug)]
pub(crate) struct RedisHandle {
    client: redis::Client,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
}

impl RedisHandle {
    fn new(client: redis::Client) -> Self {
        Self {
            client,
            manager: tokio::sync::Mutex::new(None),
        }
    }

    /// The shared connection, connecting first if needed. Commands on it fail fast while
    /// Redis is down and succeed again once it is back.
    pub(crate) async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CHECK_TIMEOUT))
            .set_response_timeout(Some(CHECK_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        *slot = Some(manager.clone());
        Ok(manager)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unconfigured_dependencies_are_not_checked() {
        let deps = Deps::new(None, None).unwrap();
        assert_eq!(deps.check_postgres().await, Check::NotConfigured);
        assert_eq!(deps.check_redis().await, Check::NotConfigured);
    }

    #[test]
    fn malformed_urls_are_rejected_up_front() {
        assert!(Deps::new(Some("not a url"), None).is_err());
        assert!(Deps::new(None, Some("http://nope")).is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_down() {
        // Port 1 on loopback refuses connections.
        let deps = Deps::new(
            Some("postgres://u@127.0.0.1:1/db"),
            Some("redis://127.0.0.1:1"),
        )
        .unwrap();
        assert!(matches!(deps.check_postgres().await, Check::Down(_)));
        assert!(matches!(deps.check_redis().await, Check::Down(_)));
    }
}
