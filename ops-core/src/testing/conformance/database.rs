//! Conformance tests for [`Database`] backends.

use crate::database::{Database, SessionFilter};
use crate::error::ErrorKind;

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

/// Sizes are reported and settings read back.
///
/// # Panics
/// When sizes or settings misbehave.
pub async fn sizes_and_settings(db: &dyn Database) {
    let _ = db
        .database_sizes()
        .await
        .unwrap_or_else(|e| panic!("database_sizes failed: {}", e.chain()));
    let _ = db
        .table_sizes(10)
        .await
        .unwrap_or_else(|e| panic!("table_sizes failed: {}", e.chain()));
    let unknown = db.setting("opsbook_no_such_setting").await;
    assert!(
        matches!(
            unknown.as_ref().map_err(crate::OpsError::kind),
            Err(ErrorKind::NotFound | ErrorKind::InvalidInput)
        ),
        "an unknown setting is NotFound or InvalidInput"
    );
}

/// Every database test.
///
/// # Panics
/// When any of them fails.
pub async fn run_all(db: &dyn Database) {
    ping_info_and_stats(db).await;
    terminate_matches_sessions(db).await;
    sizes_and_settings(db).await;
}
