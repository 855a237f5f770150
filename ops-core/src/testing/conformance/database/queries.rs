//! Checks of running statements: cancel and slow-query statistics.

use crate::database::{Database, SessionFilter, SessionState, SlowQueryOptions};
use crate::error::ErrorKind;
use crate::refs::Pid;

use super::fixture::{KnownStatement, ok};

/// A pid no session has: above every pid listed, near the top of the range.
async fn unused_pid(db: &dyn Database) -> Pid {
    let listed = ok("sessions", db.sessions(&SessionFilter::all()).await);
    let mut candidate = i32::MAX - i32::from(fastrand::u16(..));
    while listed.iter().any(|s| s.pid.get() == candidate) {
        candidate -= 1;
    }
    ok("pid", Pid::new(candidate))
}

/// Cancelling the statement of the one session the caller runs as `application` (state
/// `active`) returns true, and within ten seconds that session is still there, same pid, no
/// longer active (cancel is not terminate); a second cancel finds nothing to cancel (false);
/// cancelling a pid no session has is false or [`ErrorKind::NotFound`].
///
/// # Panics
/// When the session is not running, the cancel is not reported, the statement keeps running
/// or the session is gone.
pub async fn cancel_stops_the_statement_not_the_session(db: &dyn Database, application: &str) {
    let busy = SessionFilter::default().with_application(application.to_owned());
    let found = ok("sessions", db.sessions(&busy).await);
    assert_eq!(
        found.len(),
        1,
        "the caller runs one session as {application}: {found:?}"
    );
    assert_eq!(
        found[0].state,
        SessionState::Active,
        "the session {application} runs a statement: {found:?}"
    );
    let pid = found[0].pid;
    assert!(
        ok("cancel", db.cancel(pid).await),
        "cancel of the running statement of pid {pid} reports it cancelled"
    );
    let what = format!("the statement of pid {pid} is still running after cancel");
    let busy = &busy;
    super::super::within_ten_seconds(&what, move || async move {
        let now = ok("sessions", db.sessions(busy).await);
        assert!(
            now.iter().any(|s| s.pid == pid),
            "cancel ended the session {pid} (cancel must only stop its statement): {now:?}"
        );
        now.iter()
            .all(|s| s.pid != pid || s.state != SessionState::Active)
    })
    .await;
    assert!(
        !ok("cancel", db.cancel(pid).await),
        "an idle session has no statement to cancel"
    );
    let still = ok("sessions", db.sessions(busy).await);
    assert!(
        still.iter().any(|s| s.pid == pid),
        "the cancelled session {pid} stays connected: {still:?}"
    );
    let missing = unused_pid(db).await;
    match db.cancel(missing).await {
        Ok(cancelled) => assert!(!cancelled, "pid {missing} has no session to cancel"),
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::NotFound,
            "cancel of pid {missing}: {}",
            e.chain()
        ),
    }
}

/// When [`crate::database::DatabaseCapabilities::slow_queries`] is claimed, the statement the
/// caller ran is listed (its normalised text contains the marker) with at least one call,
/// and no listed statement shows any of its literals; when disclaimed the call is
/// [`ErrorKind::Unsupported`].
///
/// # Panics
/// When the statement is missing or a literal shows.
pub async fn slow_queries_list_the_statement_without_literals(
    db: &dyn Database,
    statement: &KnownStatement,
) {
    let opts = SlowQueryOptions {
        limit: 1000,
        ..SlowQueryOptions::default()
    };
    let listed = db.slow_queries(opts).await;
    if !db.capabilities().slow_queries {
        assert_eq!(
            listed.map(|v| v.len()).map_err(|e| e.kind()),
            Err(ErrorKind::Unsupported),
            "slow_queries is disclaimed"
        );
        return;
    }
    let listed = ok("slow_queries", listed);
    let mine: Vec<_> = listed
        .iter()
        .filter(|q| q.query.contains(&statement.marker))
        .collect();
    assert!(
        mine.iter().any(|q| q.calls >= 1),
        "the statement with {:?} is listed with its calls: {listed:?}",
        statement.marker
    );
    for q in &listed {
        for literal in &statement.literals {
            assert!(
                !q.query.contains(literal.as_str()),
                "a listed statement shows the literal {literal:?}: {:?}",
                q.query
            );
        }
    }
}
