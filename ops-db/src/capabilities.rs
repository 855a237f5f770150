//! What a [`PgDatabase`] can do on this server and host: `pg_stat_statements` as observed,
//! `pg_dump` / `pg_restore` as found.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use ops_core::database::{DatabaseCapabilities, SlowQueryOptions};
use ops_core::{ErrorKind, OpsError};

use crate::database::PgDatabase;

/// Whether `pg_stat_statements` answers: not known yet (0, the default), yes, no.
#[derive(Debug, Default)]
pub(crate) struct SlowQueryProbe(AtomicU8);

const PRESENT: u8 = 1;
const ABSENT: u8 = 2;

impl SlowQueryProbe {
    /// Record what a `slow_queries` call found.
    pub(crate) fn observe(&self, present: bool) {
        self.0
            .store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
    }

    fn present(&self) -> bool {
        self.0.load(Ordering::Relaxed) == PRESENT
    }
}

/// Whether `program` can be started: a path names an existing file; a bare name is looked up
/// in `PATH`.
fn runnable(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl PgDatabase {
    /// What this database can do as far as known: `slow_queries` once a call (or
    /// [`PgDatabase::probe_capabilities`]) found `pg_stat_statements` answering; `backup`
    /// when `pg_dump` and `pg_restore` can be started; replication status and settings always.
    pub(crate) fn known_capabilities(&self) -> DatabaseCapabilities {
        let config = self.config();
        let mut caps = DatabaseCapabilities::all();
        caps.slow_queries = self.shared.slow_query_probe.present();
        caps.backup = runnable(&config.pg_dump) && runnable(&config.pg_restore);
        caps
    }

    /// Ask the server whether `pg_stat_statements` answers, then return
    /// [`ops_core::Database::capabilities`]: until this (or a `slow_queries` call) has run,
    /// `slow_queries` is not claimed.
    ///
    /// # Errors
    /// As [`ops_core::Database::ping`] when the server does not answer.
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = ops_db::PgDatabaseBuilder::from_env().build()?;
    /// let caps = db.probe_capabilities().await?;
    /// println!("slow queries: {}", caps.slow_queries);
    /// # Ok(()) }
    /// ```
    pub async fn probe_capabilities(&self) -> Result<DatabaseCapabilities, OpsError> {
        let mut one = SlowQueryOptions::default();
        one.limit = 1;
        match self.slow_queries_impl(&one).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.known_capabilities())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_or_by_path() {
        assert!(runnable(Path::new("sh")));
        assert!(runnable(Path::new("/bin/sh")));
        assert!(!runnable(Path::new("opsbook-no-such-program")));
        assert!(!runnable(Path::new("/nonexistent/pg_dump")));
    }

    #[test]
    fn slow_queries_are_claimed_only_once_seen() {
        let probe = SlowQueryProbe::default();
        assert!(!probe.present());
        probe.observe(true);
        assert!(probe.present());
        probe.observe(false);
        assert!(!probe.present());
    }
}
