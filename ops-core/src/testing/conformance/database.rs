//! Conformance tests for [`Database`] backends.
//!
//! [`run_all`] calls every trait method against what a [`DatabaseFixture`] says the caller
//! arranged: sessions to terminate and cancel, a scratch table with old and new rows, a
//! backup directory and a database to restore into, a statement for the slow-query
//! statistics. Each check reads back the effect of what it asked for, so a backend that
//! acknowledges and does nothing fails; what [`Database::capabilities`] disclaims must be
//! [`ErrorKind::Unsupported`].

use std::time::Duration;

use crate::database::{Database, SessionFilter, SlowQueryOptions};
use crate::error::ErrorKind;

mod backups;
mod data;
mod fixture;
mod queries;

pub use backups::backup_verify_and_restore;
pub use data::{
    maintain_vacuums_the_table, retention_deletes_exactly_the_old_rows,
    settings_change_and_read_back,
};
pub use fixture::{DatabaseFixture, KnownStatement, ScratchTable};
pub use queries::{
    cancel_stops_the_statement_not_the_session, slow_queries_list_the_statement_without_literals,
};

/// Ping, server info and connection stats are consistent.
///
/// # Panics
/// When they are not.
pub async fn ping_info_and_stats(db: &dyn Database) {
    let ping = db
        .ping()
        .await
        .unwrap_or_else(|e| panic!("ping failed: {}", e.chain()));
    assert!(ping.latency.as_secs() < 5, "ping latency is sane");
    let info = db
        .server_info()
        .await
        .unwrap_or_else(|e| panic!("server_info failed: {}", e.chain()));
    assert!(info.max_connections > 0, "max_connections is known");
    assert!(!info.version.is_empty());
    let stats = db
        .connection_stats()
        .await
        .unwrap_or_else(|e| panic!("connection_stats failed: {}", e.chain()));
    assert_eq!(
        stats.total,
        stats.by_state.values().sum::<u32>(),
        "total is the sum of states"
    );
    assert_eq!(stats.max_connections, info.max_connections);
    assert!(stats.utilisation() >= 0.0);
}

/// Termination is bound to the approved pids and re-checked against the guard: an unbounded
/// guard is refused, approved pids that no longer match are left alone, and an empty list
/// terminates nobody even with [`SessionFilter::all`].
///
/// # Panics
/// When any of these does not hold.
pub async fn terminate_matches_sessions(db: &dyn Database) {
    let unbounded = db.terminate(&[], &SessionFilter::default()).await;
    assert_eq!(
        unbounded.map(|v| v.len()).map_err(|e| e.kind()),
        Err(crate::ErrorKind::InvalidInput),
        "an unbounded guard must be refused"
    );
    let everyone = db
        .sessions(&SessionFilter::all())
        .await
        .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()));
    let pids: Vec<_> = everyone.iter().map(|s| s.pid).collect();
    let nobody = SessionFilter::default()
        .with_application(format!("opsbook-no-such-app-{}", fastrand::u64(..)));
    assert!(
        db.sessions(&nobody)
            .await
            .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()))
            .is_empty()
    );
    let gone = db
        .terminate(&pids, &nobody)
        .await
        .unwrap_or_else(|e| panic!("terminate failed: {}", e.chain()));
    assert!(
        gone.is_empty(),
        "approved pids that fail the guard must be left alone"
    );
    let gone = db
        .terminate(&[], &SessionFilter::all())
        .await
        .unwrap_or_else(|e| panic!("terminate failed: {}", e.chain()));
    assert!(gone.is_empty(), "no pid approved, nobody terminated");
    let still = db
        .sessions(&SessionFilter::all())
        .await
        .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()));
    for pid in pids {
        assert!(
            still.iter().any(|s| s.pid == pid),
            "session {pid} was terminated though no call approved it"
        );
    }
}

/// The one session the caller opened with `application` as its `application_name` (and keeps
/// open, idle) is listed; terminating its pid under a guard naming the application returns
/// it; within ten seconds it is no longer listed; a second terminate finds nobody.
///
/// # Panics
/// When the session is not seen, not returned or still there.
pub async fn terminate_ends_a_session(db: &dyn Database, application: &str) {
    let mine = SessionFilter::default().with_application(application.to_owned());
    let found = db
        .sessions(&mine)
        .await
        .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()));
    assert_eq!(
        found.len(),
        1,
        "the caller opened one session as {application}: {found:?}"
    );
    let pid = found[0].pid;
    let gone = db
        .terminate(&[pid], &mine)
        .await
        .unwrap_or_else(|e| panic!("terminate failed: {}", e.chain()));
    assert_eq!(
        gone.iter().map(|s| s.pid).collect::<Vec<_>>(),
        vec![pid],
        "terminate returns the session it ended"
    );
    let still = format!("session {pid} is still there after terminate");
    let mine = &mine;
    super::within_ten_seconds(&still, move || async move {
        db.sessions(mine)
            .await
            .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()))
            .iter()
            .all(|s| s.pid != pid)
    })
    .await;
    let again = db
        .terminate(&[pid], mine)
        .await
        .unwrap_or_else(|e| panic!("terminate failed: {}", e.chain()));
    assert!(again.is_empty(), "a session ended is not ended twice");
}

/// What [`Database::capabilities`] claims works, and what it disclaims is `Unsupported`:
/// slow queries, backups (listing a directory), replication status, settings.
///
/// # Panics
/// When capabilities and behaviour disagree.
pub async fn capabilities_match_behaviour(db: &dyn Database) {
    let caps = db.capabilities();
    let kind = |r: Result<(), crate::OpsError>| r.err().map(|e| e.kind());
    let slow = kind(db.slow_queries(SlowQueryOptions::default()).await.map(drop));
    if caps.slow_queries {
        assert_eq!(slow, None, "slow_queries is claimed and must work");
    } else {
        assert_eq!(
            slow,
            Some(ErrorKind::Unsupported),
            "slow_queries is disclaimed"
        );
    }
    let missing = std::env::temp_dir().join(format!("opsbook-no-such-dir-{}", fastrand::u64(..)));
    let listed = kind(db.list_backups(&missing).await.map(drop));
    if caps.backup {
        assert_eq!(
            listed,
            Some(ErrorKind::NotFound),
            "backups of a missing directory"
        );
        let verified = kind(db.verify_backup(&missing.join("x.dump")).await.map(drop));
        assert_eq!(verified, Some(ErrorKind::NotFound), "a missing backup");
    }
    let replication = kind(db.replication().await.map(drop));
    assert_eq!(
        replication,
        (!caps.replication).then_some(ErrorKind::Unsupported),
        "replication status as claimed"
    );
    let setting = db.setting("max_connections").await;
    if caps.settings {
        let info = db
            .server_info()
            .await
            .unwrap_or_else(|e| panic!("server_info failed: {}", e.chain()));
        let value = setting.unwrap_or_else(|e| panic!("setting failed: {}", e.chain()));
        assert_eq!(
            value.trim().parse::<u32>().ok(),
            Some(info.max_connections),
            "the setting agrees with server_info"
        );
    } else {
        assert_eq!(
            setting.err().map(|e| e.kind()),
            Some(ErrorKind::Unsupported)
        );
    }
}

/// Sizes are reported (at least one database), the other reads answer and an unknown
/// setting is refused.
///
/// # Panics
/// When sizes or settings misbehave.
pub async fn sizes_and_settings(db: &dyn Database) {
    let sizes = db
        .database_sizes()
        .await
        .unwrap_or_else(|e| panic!("database_sizes failed: {}", e.chain()));
    assert!(!sizes.is_empty(), "a server has at least one database");
    let _ = db
        .table_sizes(10)
        .await
        .unwrap_or_else(|e| panic!("table_sizes failed: {}", e.chain()));
    let _ = db
        .index_usage()
        .await
        .unwrap_or_else(|e| panic!("index_usage failed: {}", e.chain()));
    let _ = db
        .blocked()
        .await
        .unwrap_or_else(|e| panic!("blocked failed: {}", e.chain()));
    let _ = db
        .long_running(Duration::from_secs(3600))
        .await
        .unwrap_or_else(|e| panic!("long_running failed: {}", e.chain()));
    let unknown = db.setting("opsbook_no_such_setting").await;
    assert!(
        matches!(
            unknown.as_ref().map_err(crate::OpsError::kind),
            Err(ErrorKind::NotFound | ErrorKind::InvalidInput)
        ),
        "an unknown setting is NotFound or InvalidInput"
    );
}

/// Every database check, against what `fx` says the caller arranged (see
/// [`DatabaseFixture`]): it ends the idle session, cancels the busy one's statement, changes
/// and restores `log_min_duration_statement`, backs up, corrupts a copy and restores, deletes
/// the scratch table's old rows and vacuums it. Checks whose arrangement is missing are
/// skipped.
///
/// # Panics
/// When any of them fails.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ops_core::Pid;
/// use ops_core::database::{DatabaseSize, Session, SessionState};
/// use ops_core::testing::FakeDatabase;
/// use ops_core::testing::conformance::database::{run_all, DatabaseFixture, ScratchTable};
/// let mut idle = Session::new(Pid::new(42)?, SessionState::Idle);
/// idle.application = Some("idle".to_owned());
/// let day = Duration::from_secs(86_400);
/// let (table, column) = ("public.events".parse()?, "created_at".parse()?);
/// let db = FakeDatabase::default()
///     .with_sessions(vec![idle])
///     .with_database_sizes(vec![DatabaseSize::new("app", 1 << 20)])
///     .with_rows("public.events".parse()?, "created_at".parse()?, 60 * day, 9)
///     .with_rows("public.events".parse()?, "created_at".parse()?, day, 4);
/// let fx = DatabaseFixture::new("idle")
///     .with_scratch_table(ScratchTable::new(table, column, 30 * day, 9, 4));
/// run_all(&db, &fx).await;
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub async fn run_all(db: &dyn Database, fx: &DatabaseFixture) {
    ping_info_and_stats(db).await;
    terminate_matches_sessions(db).await;
    if let Some(busy) = &fx.busy_application {
        cancel_stops_the_statement_not_the_session(db, busy).await;
    }
    terminate_ends_a_session(db, &fx.idle_application).await;
    capabilities_match_behaviour(db).await;
    sizes_and_settings(db).await;
    settings_change_and_read_back(db).await;
    backup_verify_and_restore(db, fx).await;
    if let Some(scratch) = &fx.scratch {
        retention_deletes_exactly_the_old_rows(db, scratch).await;
        maintain_vacuums_the_table(db, scratch).await;
    }
    if let Some(statement) = &fx.known_statement {
        slow_queries_list_the_statement_without_literals(db, statement).await;
    }
}
