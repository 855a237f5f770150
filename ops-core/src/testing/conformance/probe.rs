//! Conformance tests for [`Probe`] backends.

use crate::probe::{Outcome, Probe};

/// A probe of a healthy target reports `Up` with its latency and a name fit for reports.
///
/// # Panics
/// When it does not.
pub async fn healthy_target_is_up(probe: &dyn Probe) {
    assert!(!probe.name().is_empty(), "a probe has a name");
    assert!(
        !probe.name().contains('@'),
        "a probe name never carries credentials"
    );
    let r = probe
        .check()
        .await
        .unwrap_or_else(|e| panic!("check failed: {}", e.chain()));
    assert_eq!(r.outcome, Outcome::Up, "healthy target: {}", r.detail);
    assert!(r.failed().next().is_none(), "no failed observation when up");
}

/// A probe of a failing target reports `Down` (as a result, not an error) and says why.
///
/// # Panics
/// When it does not.
pub async fn failing_target_is_down(probe: &dyn Probe) {
    let r = probe.check().await.unwrap_or_else(|e| {
        panic!(
            "a down target must be a result, not an error: {}",
            e.chain()
        )
    });
    assert_ne!(r.outcome, Outcome::Up);
    assert!(!r.detail.is_empty(), "a down result says why");
}

/// The same probe sees its target `Up`, then — after `take_down` stops the target — `Down`
/// within `within`, so a probe that always says one thing fails.
///
/// # Panics
/// When either state is not observed.
pub async fn sees_up_then_down(
    probe: &dyn Probe,
    take_down: impl std::future::Future<Output = ()> + Send,
    within: std::time::Duration,
) {
    healthy_target_is_up(probe).await;
    take_down.await;
    let until = tokio::time::Instant::now() + within;
    loop {
        let r = probe.check().await.unwrap_or_else(|e| {
            panic!(
                "a down target must be a result, not an error: {}",
                e.chain()
            )
        });
        if r.outcome == Outcome::Down {
            assert!(!r.detail.is_empty(), "a down result says why");
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "still {:?} {within:?} after the target went down",
            r.outcome
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A probe of a port where nothing listens is `Down` (a result, not an error), quickly.
///
/// # Panics
/// When it is not.
pub async fn refused_is_down(probe: &dyn Probe, timeout: std::time::Duration) {
    let started = std::time::Instant::now();
    failing_target_is_down(probe).await;
    assert!(
        started.elapsed() < timeout,
        "a refused connection is seen at once, not after the timeout: {:?}",
        started.elapsed()
    );
}

/// A probe (with timeout `timeout`) of a server that accepts and never answers is `Down`
/// within `timeout` and 2 s more, and says it timed out.
///
/// # Panics
/// When it is not.
pub async fn silence_is_down_within_timeout(probe: &dyn Probe, timeout: std::time::Duration) {
    let started = std::time::Instant::now();
    let r = probe.check().await.unwrap_or_else(|e| {
        panic!(
            "a silent target must be a result, not an error: {}",
            e.chain()
        )
    });
    assert_eq!(r.outcome, Outcome::Down, "{}", r.detail);
    assert!(
        started.elapsed() < timeout + std::time::Duration::from_secs(2),
        "the probe's deadline holds: {:?}",
        started.elapsed()
    );
    let detail = r.detail.to_lowercase();
    assert!(
        detail.contains("time") || detail.contains("deadline"),
        "it says it timed out: {}",
        r.detail
    );
}

/// A probe of a target that serves but fails a soft condition (a certificate expiring soon, a
/// slow answer) reports `Degraded` (a result, not an error), names the failed observation and
/// says why.
///
/// # Panics
/// When it reports anything else or gives no reason.
pub async fn soft_failure_is_degraded(probe: &dyn Probe) {
    let r = probe.check().await.unwrap_or_else(|e| {
        panic!(
            "a degraded target must be a result, not an error: {}",
            e.chain()
        )
    });
    assert_eq!(
        r.outcome,
        Outcome::Degraded,
        "a soft failure is degraded: {}",
        r.detail
    );
    assert!(!r.detail.is_empty(), "a degraded result says why");
    assert!(
        r.failed().next().is_some(),
        "a degraded result names the condition that failed: {r:?}"
    );
}
