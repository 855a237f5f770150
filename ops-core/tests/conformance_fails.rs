//! The database, cache and notifier checks fail against backends that drop the behaviour they
//! check (the Platform suite's broken fakes are in `platform_conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mockall::predicate::always;
use ops_core::Pid;
use ops_core::cache::{ClientInfo, FlushScope, KeyCount, MockCache, PurgeOutcome};
use ops_core::database::{MockDatabase, Session, SessionState};
use ops_core::metrics::{MetricQuery, QueryResult, Sample};
use ops_core::probe::{Observation, ProbeResult};
use ops_core::testing::{FakeMetrics, RecordingNotifier, ScriptedProbe, conformance};

mod support;

const APP: &str = "opsbook-conformance-idle";

fn idle() -> Session {
    let mut s = Session::new(Pid::new(4242).unwrap(), SessionState::Idle);
    s.application = Some(APP.to_owned());
    s
}

/// A terminate that reports the session ended while it stays connected.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still there after terminate")]
async fn a_terminate_that_ends_nothing_fails_the_database_check() {
    let mut db = MockDatabase::new();
    db.expect_sessions().returning(|_| Ok(vec![idle()]));
    db.expect_terminate()
        .with(always(), always())
        .returning(|_, _| Ok(vec![idle()]));
    conformance::database::terminate_ends_a_session(&db, APP).await;
}

/// Capabilities that claim slow queries the backend refuses.
#[tokio::test]
#[should_panic(expected = "slow_queries is claimed")]
async fn claimed_slow_queries_that_are_unsupported_fail_the_database_check() {
    let mut db = MockDatabase::new();
    db.expect_capabilities()
        .returning(ops_core::database::DatabaseCapabilities::all);
    db.expect_slow_queries().returning(|_| {
        Err(ops_core::OpsError::new(
            ops_core::ErrorKind::Unsupported,
            "mock",
            "slow_queries",
            "db",
        ))
    });
    conformance::database::capabilities_match_behaviour(&db).await;
}

fn named() -> ClientInfo {
    let mut c = ClientInfo::new(7, "10.0.0.7:50000");
    c.name = Some(APP.to_owned());
    c
}

/// A kill that reports the client killed while it stays connected.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still connected after the kill")]
async fn a_kill_that_disconnects_nobody_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache.expect_clients().returning(|_| Ok(vec![named()]));
    cache.expect_kill_clients().returning(|_, _| Ok(vec![7]));
    conformance::cache::kill_ends_a_client(&cache, APP).await;
}

/// A client listing that does not show the caller's client.
#[tokio::test]
#[should_panic(expected = "is listed")]
async fn a_listing_without_the_callers_client_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache.expect_kill_clients().returning(|_, guard| {
        guard.require_bounded("mock", "kill_clients")?;
        Ok(Vec::new())
    });
    cache
        .expect_clients()
        .returning(|_| Ok(vec![ClientInfo::new(8, "10.0.0.8:50000")]));
    conformance::cache::clients_listing(&cache, APP).await;
}

/// A receiver that never gets the resolution.
#[tokio::test]
#[should_panic(expected = "got nothing for the resolution")]
async fn a_lost_resolution_fails_the_notifier_check() {
    let n = RecordingNotifier::default();
    let inbox = || {
        n.sent()
            .iter()
            .filter(|m| !m.resolved)
            .map(|m| format!("{} {}", m.title, m.dedup_key))
            .collect()
    };
    conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &[]).await;
}

/// A delivery that carries a secret.
#[tokio::test]
#[should_panic(expected = "holds a secret")]
async fn a_delivery_with_a_secret_fails_the_notifier_check() {
    let n = RecordingNotifier::default();
    let inbox = || {
        n.sent()
            .iter()
            .map(|m| {
                format!(
                    "{} {} {:?} https://hooks/SECRETPATH",
                    m.title, m.dedup_key, m.status
                )
            })
            .collect()
    };
    conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &["SECRETPATH"]).await;
}

/// A probe that always says up.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "after the target went down")]
async fn a_probe_that_never_sees_down_fails_the_probe_check() {
    let probe = ops_core::testing::ScriptedProbe::new("always-up");
    conformance::probe::sees_up_then_down(&probe, async {}, std::time::Duration::from_secs(5))
        .await;
}

/// A metrics backend that answers every query with nothing.
#[tokio::test]
#[should_panic(expected = "one sample")]
async fn metrics_that_answer_nothing_fail_the_metrics_check() {
    conformance::metrics::vector_and_range(&ops_core::testing::FakeMetrics::default()).await;
}

/// A `FakeDatabase` with one behaviour broken, for the database checks that act.
mod broken {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use ops_core::database::{
        BackupInfo, BackupOptions, BlockedQuery, ConnectionStats, Database, DatabaseCapabilities,
        DatabaseSize, IndexUsage, Maintenance, MaintenanceOutcome, Ping, ReplicaLag,
        RestoreOptions, RestoreOutcome, RowRetention, RowsDeleted, ServerInfo, Session,
        SessionFilter, SessionState, SettingChange, SlowQuery, SlowQueryOptions, TableSize,
    };
    use ops_core::testing::FakeDatabase;
    use ops_core::testing::conformance::database::{DatabaseFixture, KnownStatement, ScratchTable};
    use ops_core::{OpsError, Pid, TableRef};

    /// What the broken database gets wrong.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Break {
        /// Nothing: the fake as it is.
        Nothing,
        /// `cancel` says yes and the statement runs on.
        CancelNothing,
        /// `cancel` ends the whole session, as terminate would.
        CancelTerminates,
        /// `set_setting` accepts a setting the server does not have.
        UnknownSettingAccepted,
        /// `slow_queries` lists nothing though statements ran.
        SlowQueriesEmpty,
        /// `delete_older_than` reports the rows it should delete and deletes none.
        DeleteNothing,
        /// `delete_older_than` also deletes the newer rows (and reports the old ones only).
        DeleteTooMuch,
        /// `set_setting` reports the change and keeps the old value.
        SettingNotPersisted,
        /// `verify_backup` accepts a dump whatever its bytes.
        VerifyAnything,
        /// `restore` reports success and brings no rows back.
        RestoreNothing,
        /// `maintain` reports the statement and leaves the dead rows.
        MaintainNothing,
        /// `slow_queries` shows statements with their literals.
        SlowQueriesWithLiterals,
    }

    #[derive(Debug)]
    pub(crate) struct Broken {
        inner: FakeDatabase,
        broken: Break,
    }

    pub(crate) const DAY: Duration = Duration::from_secs(86_400);

    fn session(pid: i32, state: SessionState, app: &str) -> Session {
        let mut s = Session::new(Pid::new(pid).unwrap(), state).aged(Duration::from_secs(90));
        s.application = Some(app.to_owned());
        s
    }

    /// The broken database, the fixture for it and the directory its backups go to.
    pub(crate) fn arranged(broken: Break) -> (Broken, DatabaseFixture, tempfile::TempDir) {
        let scratch = ScratchTable::new(
            "public.rows".parse().unwrap(),
            "created_at".parse().unwrap(),
            30 * DAY,
            25,
            7,
        );
        let literal_free = SlowQuery::new("SELECT * FROM rows WHERE note = $1", 3, 9.0, 3.0, 3);
        let inner = FakeDatabase::default()
            .with_sessions(vec![
                session(4242, SessionState::Idle, "idle"),
                session(4243, SessionState::Active, "busy"),
            ])
            .with_database_sizes(vec![DatabaseSize::new("app", 8 << 20)])
            .with_rows(scratch.table.clone(), scratch.column.clone(), 60 * DAY, 25)
            .with_rows(scratch.table.clone(), scratch.column.clone(), DAY, 7)
            .with_slow_queries(Some(vec![literal_free]))
            .with_backups_on_disk();
        let dir = tempfile::tempdir().unwrap();
        let restored: Arc<dyn Database> = Arc::new(inner.connected_to("app_restored"));
        let fx = DatabaseFixture::new("idle")
            .with_busy_session("busy")
            .with_scratch_table(scratch)
            .with_backups("app".parse().unwrap(), dir.path())
            .with_restore_into("app_restored".parse().unwrap(), Some(restored))
            .with_known_statement(KnownStatement::new("FROM rows", ["secret-note"]));
        (Broken { inner, broken }, fx, dir)
    }

    #[async_trait]
    impl Database for Broken {
        fn backend(&self) -> &'static str {
            "broken"
        }
        fn capabilities(&self) -> DatabaseCapabilities {
            self.inner.capabilities()
        }
        async fn ping(&self) -> Result<Ping, OpsError> {
            self.inner.ping().await
        }
        async fn server_info(&self) -> Result<ServerInfo, OpsError> {
            self.inner.server_info().await
        }
        async fn connection_stats(&self) -> Result<ConnectionStats, OpsError> {
            self.inner.connection_stats().await
        }
        async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError> {
            self.inner.sessions(filter).await
        }
        async fn terminate(
            &self,
            pids: &[Pid],
            guard: &SessionFilter,
        ) -> Result<Vec<Session>, OpsError> {
            self.inner.terminate(pids, guard).await
        }
        async fn cancel(&self, pid: Pid) -> Result<bool, OpsError> {
            if self.broken == Break::CancelNothing {
                return Ok(true);
            }
            if self.broken == Break::CancelTerminates {
                let gone = self.inner.terminate(&[pid], &SessionFilter::all()).await?;
                return Ok(!gone.is_empty());
            }
            self.inner.cancel(pid).await
        }
        async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError> {
            self.inner.long_running(min).await
        }
        async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError> {
            self.inner.blocked().await
        }
        async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError> {
            let mut listed = self.inner.slow_queries(opts).await?;
            if self.broken == Break::SlowQueriesEmpty {
                listed.clear();
            }
            if self.broken == Break::SlowQueriesWithLiterals {
                for q in &mut listed {
                    q.query = q.query.replace("$1", "'secret-note'");
                }
            }
            Ok(listed)
        }
        async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError> {
            self.inner.database_sizes().await
        }
        async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError> {
            self.inner.table_sizes(limit).await
        }
        async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError> {
            self.inner.index_usage().await
        }
        async fn maintain(
            &self,
            op: Maintenance,
            table: Option<TableRef>,
        ) -> Result<MaintenanceOutcome, OpsError> {
            if self.broken == Break::MaintainNothing
                && let Some(t) = &table
            {
                let statement = format!("{} {}", op.sql_verb(), t.quoted());
                return Ok(MaintenanceOutcome::new(
                    statement,
                    Duration::ZERO,
                    Vec::new(),
                ));
            }
            self.inner.maintain(op, table).await
        }
        async fn setting(&self, name: &str) -> Result<String, OpsError> {
            self.inner.setting(name).await
        }
        async fn set_setting(&self, name: &str, value: &str) -> Result<SettingChange, OpsError> {
            if self.broken == Break::UnknownSettingAccepted
                && self.inner.setting(name).await.is_err()
            {
                return Ok(SettingChange::new(name, "", value, false));
            }
            if self.broken == Break::SettingNotPersisted {
                let old = self.inner.setting(name).await?;
                return Ok(SettingChange::new(name, old, value, false));
            }
            self.inner.set_setting(name, value).await
        }
        async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> {
            self.inner.count_older_than(retention).await
        }
        async fn delete_older_than(
            &self,
            retention: &RowRetention,
        ) -> Result<RowsDeleted, OpsError> {
            match self.broken {
                Break::DeleteNothing => {
                    let old = self.inner.count_older_than(retention).await?;
                    let n = retention.max_rows.map_or(old, |m| m.min(old));
                    let batches = n.div_ceil(u64::from(retention.batch_size));
                    Ok(RowsDeleted::new(n, batches, n == old))
                }
                // Budgeted deletes are right; an unbudgeted one takes every row.
                Break::DeleteTooMuch if retention.max_rows.is_none() => {
                    let mut everything = retention.clone();
                    everything.older_than = Duration::ZERO;
                    let old = self.inner.count_older_than(retention).await?;
                    self.inner.delete_older_than(&everything).await?;
                    let batches = old.div_ceil(u64::from(retention.batch_size));
                    Ok(RowsDeleted::new(old, batches, true))
                }
                _ => self.inner.delete_older_than(retention).await,
            }
        }
        async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> {
            self.inner.replication().await
        }
        async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> {
            self.inner.backup(opts).await
        }
        async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> {
            if self.broken == Break::VerifyAnything && path.exists() {
                // Trusts the sidecar instead of hashing the dump.
                let mut sidecar = path.as_os_str().to_owned();
                sidecar.push(".sha256");
                let sum = std::fs::read_to_string(Path::new(&sidecar)).unwrap();
                let sum = sum.split_whitespace().next().unwrap().to_owned();
                let bytes = std::fs::metadata(path).unwrap().len();
                return Ok(BackupInfo::new(path, sum, bytes));
            }
            self.inner.verify_backup(path).await
        }
        async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> {
            self.inner.list_backups(dir).await
        }
        async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> {
            if self.broken == Break::RestoreNothing {
                let info = self.inner.verify_backup(&opts.backup).await?;
                return Ok(RestoreOutcome::new(opts.into.as_str(), None, info.sha256));
            }
            self.inner.restore(opts).await
        }
    }
}

use broken::{Break, arranged};

/// Runs the whole database suite against a database broken as `how`.
async fn run_broken(how: Break) {
    let (db, fx, _dir) = arranged(how);
    conformance::database::run_all(&db, &fx).await;
}

/// The suite passes against the unbroken fake: each failure below is the break's doing.
#[tokio::test(start_paused = true)]
async fn the_arranged_database_passes_when_nothing_is_broken() {
    run_broken(Break::Nothing).await;
}

/// A cancel that reports success while the statement runs on.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still running after cancel")]
async fn a_cancel_that_stops_nothing_fails_the_database_check() {
    run_broken(Break::CancelNothing).await;
}

/// A delete that reports rows it never deleted.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "the budgeted delete removed exactly")]
async fn a_delete_that_deletes_nothing_fails_the_database_check() {
    run_broken(Break::DeleteNothing).await;
}

/// A delete that takes the newer rows with the old ones.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "newer rows of public.rows remain")]
async fn a_delete_that_deletes_too_much_fails_the_database_check() {
    run_broken(Break::DeleteTooMuch).await;
}

/// A setting change that is reported and not kept.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "reads back as set")]
async fn a_setting_that_does_not_persist_fails_the_database_check() {
    run_broken(Break::SettingNotPersisted).await;
}

/// A verification that passes a dump with flipped bytes.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "fails verification")]
async fn a_verify_that_passes_a_corrupted_backup_fails_the_database_check() {
    run_broken(Break::VerifyAnything).await;
}

/// A restore that reports success and brings nothing back.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "held at backup time")]
async fn a_restore_that_restores_nothing_fails_the_database_check() {
    run_broken(Break::RestoreNothing).await;
}

/// A VACUUM that reports its statement and leaves the dead rows.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still has dead rows")]
async fn a_maintenance_that_does_nothing_fails_the_database_check() {
    run_broken(Break::MaintainNothing).await;
}

/// Slow-query statistics that show the constants of the statements.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "shows the literal")]
async fn slow_queries_with_literals_fail_the_database_check() {
    run_broken(Break::SlowQueriesWithLiterals).await;
}

/// A cancel that ends the session instead of its statement.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "cancel must only stop its statement")]
async fn a_cancel_that_terminates_fails_the_database_check() {
    run_broken(Break::CancelTerminates).await;
}

/// A setting change that accepts any name.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "an unknown setting is refused")]
async fn a_setting_change_that_accepts_unknown_names_fails_the_database_check() {
    run_broken(Break::UnknownSettingAccepted).await;
}

/// Slow-query statistics that list nothing.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "is listed with its calls")]
async fn slow_queries_that_list_nothing_fail_the_database_check() {
    run_broken(Break::SlowQueriesEmpty).await;
}

/// A cache whose count answers `n` until `gone` is set, then 0.
fn counting(n: u64, gone: &Arc<AtomicBool>) -> MockCache {
    let mut cache = MockCache::new();
    let gone = Arc::clone(gone);
    cache.expect_count().returning(move |_, _| {
        let left = if gone.load(Ordering::SeqCst) { 0 } else { n };
        Ok(KeyCount::new(left, left))
    });
    cache
}

/// A flush that answers `Ok` and deletes nothing.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still there after flush")]
async fn a_flush_that_deletes_nothing_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(20, &never);
    cache.expect_flush().returning(|_| Ok(()));
    let other = counting(20, &never);
    conformance::cache::flush_empties_exactly_its_scope(
        &cache,
        &other,
        "t:",
        20,
        FlushScope::Database,
    )
    .await;
}

/// A flush of one database that empties every database.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "leaves another database's keys")]
async fn a_database_flush_that_empties_every_database_fails_the_cache_check() {
    let flushed = Arc::new(AtomicBool::new(false));
    let mut cache = counting(20, &flushed);
    let set = Arc::clone(&flushed);
    cache.expect_flush().returning(move |_| {
        set.store(true, Ordering::SeqCst);
        Ok(())
    });
    let other = counting(20, &flushed);
    conformance::cache::flush_empties_exactly_its_scope(
        &cache,
        &other,
        "t:",
        20,
        FlushScope::Database,
    )
    .await;
}

/// A sample that names a key twice.
#[tokio::test]
#[should_panic(expected = "each key once")]
async fn a_sample_with_a_key_twice_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(2, &never);
    cache
        .expect_sample()
        .returning(|_, _| Ok(vec!["t:drop:0".to_owned(), "t:drop:0".to_owned()]));
    conformance::cache::sample_agrees_with_count(&cache, "t:", 2, 2).await;
}

/// A sample that returns more keys than asked for.
#[tokio::test]
#[should_panic(expected = "at most n keys")]
async fn a_sample_over_its_limit_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(5, &never);
    cache.expect_sample().returning(|pattern, _| {
        let what = if pattern.as_str().contains("keep") {
            "keep"
        } else {
            "drop"
        };
        Ok((0..5).map(|i| format!("t:{what}:{i}")).collect())
    });
    conformance::cache::sample_agrees_with_count(&cache, "t:", 5, 5).await;
}

/// A purge that ignores its rate limit and timeout: everything at once.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "cannot be purged within 1 s")]
async fn a_purge_that_ignores_its_options_fails_the_cache_check() {
    let purged = Arc::new(AtomicBool::new(false));
    let mut cache = counting(60, &purged);
    let set = Arc::clone(&purged);
    cache.expect_purge().returning(move |_, _| {
        set.store(true, Ordering::SeqCst);
        Ok(PurgeOutcome::new(60, 60, 60, Duration::from_millis(1)))
    });
    conformance::cache::purge_honours_its_options(&cache, "t:", 60).await;
}

fn query(text: &str) -> MetricQuery {
    MetricQuery::new(text).unwrap()
}

/// A metrics source that answers a range query with the instant vector (no steps).
#[tokio::test]
#[should_panic(expected = "a range query is a matrix")]
async fn metrics_that_ignore_the_range_fail_the_metrics_check() {
    let one = Sample::new(
        std::collections::BTreeMap::default(),
        jiff::Timestamp::now(),
        1.0,
    );
    let metrics =
        FakeMetrics::default().with_result(&query("vector(1)"), QueryResult::Vector(vec![one]));
    conformance::metrics::vector_and_range(&metrics).await;
}

/// A metrics source that takes a query the server would reject.
#[tokio::test]
#[should_panic(expected = "a parse error")]
async fn metrics_that_accept_a_broken_query_fail_the_metrics_check() {
    conformance::metrics::rejected_query_is_invalid_input(&FakeMetrics::default()).await;
}

/// A metrics source that rejects instant queries but not the same query over a range.
#[tokio::test]
#[should_panic(expected = "a parse error over a range")]
async fn metrics_that_accept_a_broken_range_query_fail_the_metrics_check() {
    let metrics = FakeMetrics::default().fail_next("query", ops_core::ErrorKind::InvalidInput);
    conformance::metrics::rejected_query_is_invalid_input(&metrics).await;
}

/// A metrics source that answers `0/0` with nothing.
#[tokio::test]
#[should_panic(expected = "0/0 is the scalar NaN")]
async fn metrics_that_lose_nan_fail_the_metrics_check() {
    conformance::metrics::nan_is_a_value(&FakeMetrics::default()).await;
}

/// A probe that calls a soft failure down.
#[tokio::test]
#[should_panic(expected = "a soft failure is degraded")]
async fn a_probe_that_never_degrades_fails_the_probe_check() {
    let probe = ScriptedProbe::always("api-latency", ProbeResult::down("slow"));
    conformance::probe::soft_failure_is_degraded(&probe).await;
}

/// A degraded result that does not say which condition failed.
#[tokio::test]
#[should_panic(expected = "names the condition that failed")]
async fn a_degraded_result_without_its_condition_fails_the_probe_check() {
    let probe = ScriptedProbe::always(
        "api-latency",
        ProbeResult::degraded("slow").with_observation(Observation::new("status", "200", true)),
    );
    conformance::probe::soft_failure_is_degraded(&probe).await;
}

async fn broken_notifier(flaws: support::Flaws) {
    let (notifier, inbox, limits) = support::InboxNotifier::new(flaws);
    conformance::notifier::delivery_failures(&notifier, &*inbox, limits, &[support::SECRET]).await;
}

/// A notifier that retries at its own pace whatever `Retry-After` asks.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "waited for Retry-After")]
async fn a_notifier_that_ignores_retry_after_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        ignores_retry_after: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that retries a 400 until it goes through.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "was taken as delivered")]
async fn a_notifier_that_retries_client_errors_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        retries_client_errors: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier whose errors are all `Backend`.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "400 is InvalidInput")]
async fn a_notifier_with_untyped_errors_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        untyped: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that shows its URL in errors.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "an error holds a secret")]
async fn a_notifier_that_shows_its_url_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        shows_url: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that waits for an answer forever.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "outlived its deadline")]
async fn a_notifier_without_a_timeout_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        no_timeout: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A snapshot that waits for the save however long it takes.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "ended well")]
async fn a_snapshot_that_ignores_its_timeout_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache
        .expect_capabilities()
        .returning(ops_core::cache::CacheCapabilities::all);
    cache.expect_snapshot().returning(|_| {
        Ok(ops_core::cache::SnapshotOutcome::new(
            None,
            jiff::Timestamp::UNIX_EPOCH,
            Duration::from_secs(60),
        ))
    });
    conformance::cache::slow_snapshot_is_timeout(&cache, Duration::from_secs(2)).await;
}
