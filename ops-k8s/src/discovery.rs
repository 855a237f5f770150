//! Which optional APIs the cluster serves, found by API discovery once and kept: today
//! `metrics.k8s.io/v1beta1` (metrics-server), which [`crate::KubePlatform`]'s
//! `capabilities().resource_usage` reports.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::platform::KubePlatform;

/// The group version `resource_usage` reads.
pub(crate) const METRICS_API: &str = "metrics.k8s.io/v1beta1";

/// The longest discovery may wait for an answer, whatever the request timeout.
const DISCOVERY_DEADLINE: Duration = Duration::from_secs(5);

/// What discovery found for one API: not asked (or unanswered) yet, served, not served.
#[derive(Debug, Default)]
pub(crate) struct Discovered(AtomicU8);

impl Discovered {
    const SERVED: u8 = 1;
    const ABSENT: u8 = 2;

    /// `Some(served)` once discovery answered.
    pub(crate) fn known(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            Self::SERVED => Some(true),
            Self::ABSENT => Some(false),
            _ => None,
        }
    }

    fn set(&self, served: bool) {
        let v = if served { Self::SERVED } else { Self::ABSENT };
        self.0.store(v, Ordering::Release);
    }
}

/// Whether a discovery answer for [`METRICS_API`] means it is served: it lists pod metrics.
fn serves_pod_metrics(
    answer: kube::Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>,
) -> Option<bool> {
    match answer {
        Ok(list) => Some(list.resources.iter().any(|r| r.name == "pods")),
        // Not registered at all: the group version does not exist.
        Err(kube::Error::Api(status)) if status.code == 404 => Some(false),
        // Unreachable, refused, 5xx (a registered APIService whose backend is down): not
        // known yet; asked again later.
        Err(_) => None,
    }
}

impl KubePlatform {
    /// Whether the cluster serves `metrics.k8s.io/v1beta1` with pod metrics, asked once by
    /// API discovery (`GET /apis/metrics.k8s.io/v1beta1`, within the request timeout and at
    /// most 5 s) and kept: `None` while no answer came (the next call asks again).
    pub(crate) async fn metrics_served(&self) -> Option<bool> {
        if let Some(known) = self.metrics.known() {
            return Some(known);
        }
        let deadline = self.config.request_timeout.min(DISCOVERY_DEADLINE);
        let ask = self.client.list_api_group_resources(METRICS_API);
        let served = serves_pod_metrics(tokio::time::timeout(deadline, ask).await.ok()?)?;
        tracing::debug!(api = METRICS_API, served, "discovered");
        self.metrics.set(served);
        Some(served)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};

    use super::*;

    fn status(code: u16) -> kube::Error {
        let mut s = kube::core::Status::failure("answered", "Test");
        s.code = code;
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn an_answer_is_kept_and_only_an_answer() {
        let d = Discovered::default();
        assert_eq!(d.known(), None);
        d.set(false);
        assert_eq!(d.known(), Some(false));
        d.set(true);
        assert_eq!(d.known(), Some(true));
    }

    #[test]
    fn served_means_pod_metrics_listed_and_404_means_absent() {
        let list = |names: &[&str]| APIResourceList {
            group_version: METRICS_API.to_owned(),
            resources: names
                .iter()
                .map(|n| APIResource {
                    name: (*n).to_owned(),
                    ..APIResource::default()
                })
                .collect(),
        };
        assert_eq!(serves_pod_metrics(Ok(list(&["nodes", "pods"]))), Some(true));
        assert_eq!(serves_pod_metrics(Ok(list(&["nodes"]))), Some(false));
        assert_eq!(serves_pod_metrics(Err(status(404))), Some(false));
        assert_eq!(serves_pod_metrics(Err(status(503))), None);
        assert_eq!(serves_pod_metrics(Err(status(403))), None);
    }
}
