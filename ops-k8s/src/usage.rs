//! Resource usage from `metrics.k8s.io` (metrics-server), against each pod's limits, and the
//! Kubernetes quantity notation (`250m`, `1.5`, `128Mi`, `1e9`) it is written in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Pod;
use ops_core::platform::ResourceUsage;
use ops_core::{ResourceName, WorkloadRef};
use serde::Deserialize;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::selector_query;

/// A quantity that could not be read.
///
/// # Examples
/// ```
/// assert!(ops_k8s::parse_quantity("12Qi").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Kubernetes quantity: {0}")]
pub struct QuantityError(String);

/// Read a Kubernetes quantity as a number: `250m` is 0.25, `1Ki` is 1024, `2k` is 2000,
/// `1e3` is 1000. Fractions are kept (CPU in cores is fractional).
///
/// # Errors
/// [`QuantityError`] for anything that is not a number with one of the API's suffixes
/// (`n u m k M G T P E Ki Mi Gi Ti Pi Ei`, or a decimal exponent).
///
/// # Examples
/// ```
/// use ops_k8s::parse_quantity;
/// assert_eq!(parse_quantity("250m"), Ok(0.25));
/// assert_eq!(parse_quantity("128Mi"), Ok(134_217_728.0));
/// assert_eq!(parse_quantity("1.5"), Ok(1.5));
/// assert_eq!(parse_quantity("2e3"), Ok(2000.0));
/// ```
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let bad = || QuantityError(ops_core::text::quote(text));
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number.len() > 40 {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| bad())?;
            if !(-30..=30).contains(&e) {
                return Err(bad());
            }
            10f64.powi(e)
        }
        _ => return Err(bad()),
    };
    let out = value * factor;
    if out.is_finite() { Ok(out) } else { Err(bad()) }
}

#[derive(Debug, Deserialize)]
struct PodMetricsList {
    #[serde(default)]
    items: Vec<PodMetrics>,
}

#[derive(Debug, Deserialize)]
struct PodMetrics {
    metadata: kube::core::ObjectMeta,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Deserialize)]
struct ContainerMetrics {
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

/// The sum of a resource's limit over a pod's containers, when every container has one.
fn pod_limit(pod: &Pod, resource: &str) -> Option<f64> {
    let containers = &pod.spec.as_ref()?.containers;
    let mut total = 0.0;
    for c in containers {
        let q = c.resources.as_ref()?.limits.as_ref()?.get(resource)?;
        total += parse_quantity(&q.0).ok()?;
    }
    Some(total)
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "byte counts from quantities are non-negative and far below 2^53"
)]
fn bytes(v: f64) -> u64 {
    v.max(0.0).round() as u64
}

impl KubePlatform {
    /// CPU and memory of every pod of the workload, with its limits.
    pub(crate) async fn usage_of(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>> {
        let object = self.object("resource_usage", workload).await?;
        let pods = self.pods("resource_usage", workload, &object).await?;
        let ns = workload.namespace().as_str();
        let target = workload.to_string();
        let Some(selector) = object.selector() else {
            return Ok(Vec::new());
        };
        let query = selector_query(selector, &target)?;
        let uri = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={}",
            encode(&query)
        );
        let req = Request::new("list", "pods.metrics.k8s.io", ns);
        let answer = self
            .call("resource_usage", &target, &req, Retry::Transient, || {
                let client = self.client.clone();
                let request = http::Request::get(uri.as_str()).body(Vec::new());
                async move {
                    let request = request.map_err(kube::Error::HttpError)?;
                    client.request::<PodMetricsList>(request).await
                }
            })
            .await;
        let metrics = match answer {
            Ok(list) => list,
            Err(e) if matches!(e.status_code(), Some(404 | 503)) => {
                return Err(Error::Unsupported {
                    operation: "resource_usage",
                    target,
                    reason: "no metrics server answers for metrics.k8s.io/v1beta1 (install \
                             metrics-server to read CPU and memory)"
                        .to_owned(),
                });
            }
            Err(e) => return Err(e),
        };
        let by_name: BTreeMap<&str, &Pod> = pods
            .iter()
            .filter_map(|(p, _)| Some((p.metadata.name.as_deref()?, p)))
            .collect();
        let mut out = Vec::new();
        for m in &metrics.items {
            let Some(name) = m.metadata.name.as_deref() else {
                continue;
            };
            // Metrics of pods this workload does not control (a namesake label) are ignored.
            let Some(pod) = by_name.get(name) else {
                continue;
            };
            let (mut cpu, mut memory) = (0.0, 0.0);
            for c in &m.containers {
                let read = |key: &str| -> Result<f64> {
                    c.usage.get(key).map_or(Ok(0.0), |q| {
                        parse_quantity(q).map_err(|e| Error::Malformed {
                            operation: "resource_usage",
                            target: format!("{ns}/pod/{name}/{}", c.name),
                            reason: e.to_string(),
                        })
                    })
                };
                cpu += read("cpu")?;
                memory += read("memory")?;
            }
            let Ok(instance) = ResourceName::new(name) else {
                continue;
            };
            let mut usage = ResourceUsage::new(
                instance,
                cpu,
                bytes(memory),
                pod_limit(pod, "memory").map(bytes),
            );
            usage.cpu_limit_cores = pod_limit(pod, "cpu");
            out.push(usage);
        }
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(out)
    }
}

/// Percent-encode a label selector for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Ok(0.1));
        assert_eq!(parse_quantity("1Gi"), Ok(1_073_741_824.0));
        assert_eq!(parse_quantity("1500000n"), Ok(0.0015));
        assert_eq!(parse_quantity("3"), Ok(3.0));
        for bad in ["", "Mi", "1Qi", "1e99", "--1", "1.2.3", "1 Mi"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_are_encoded() {
        assert_eq!(
            encode("app=api,tier in (a,b)"),
            "app%3Dapi%2Ctier%20in%20%28a%2Cb%29"
        );
    }
}
