//! Configuration read from the environment.

use crate::fault::Faults;

/// What the service needs to start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// TCP port to listen on, on all interfaces (`PORT`, default 8080).
    pub(crate) port: u16,
    /// Postgres connection URL (`DATABASE_URL`); `None` leaves the database out.
    pub(crate) database_url: Option<String>,
    /// Redis connection URL (`REDIS_URL`); `None` leaves the cache out.
    pub(crate) redis_url: Option<String>,
    /// Faults switched on at start (`FAULT_*`).
    pub(crate) faults: Faults,
}

impl Config {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `get`, so tests need not touch the process environment.
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let port = match get("PORT") {
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| format!("PORT must be a port number, got {raw:?}"))?,
            None => 8080,
        };
        let non_empty = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        Ok(Self {
            port,
            database_url: non_empty("DATABASE_URL"),
            redis_url: non_empty("REDIS_URL"),
            faults: Faults::from_env(&get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_to_port_8080_without_dependencies() {
        let config = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config.port, 8080);
        assert!(config.database_url.is_none());
        assert!(config.redis_url.is_none());
        assert_eq!(config.faults, Faults::default());
    }

    #[test]
    fn empty_urls_count_as_unset() {
        let config =
            Config::from_lookup(lookup(&[("DATABASE_URL", ""), ("REDIS_URL", " ")])).unwrap();
        assert!(config.database_url.is_none());
        assert!(config.redis_url.is_none());
    }

    #[test]
    fn rejects_a_bad_port() {
        assert!(Config::from_lookup(lookup(&[("PORT", "http")])).is_err());
    }
}
