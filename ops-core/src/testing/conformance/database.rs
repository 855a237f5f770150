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

/// A filter that matches nobody terminates nobody, and the read half agrees with the act.
///
/// # Panics
/// When a non-matching filter terminates sessions.
pub async fn terminate_matches_sessions(db: &dyn Database) {
    let nobody = SessionFilter::default()
        .with_application(format!("opsbook-no-such-app-{}", fastrand::u64(..)));
    let would = db
        .sessions(&nobody)
        .await
        .unwrap_or_else(|e| panic!("sessions failed: {}", e.chain()));
    assert!(would.is_empty());
    let gone = db
        .terminate(&nobody)
        .await
        .unwrap_or_else(|e| panic!("terminate failed: {}", e.chain()));
    assert!(gone.is_empty(), "nobody matched, nobody terminated");
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
