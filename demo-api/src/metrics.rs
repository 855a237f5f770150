//! Request metrics and their Prometheus text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the `http_request_duration_seconds` buckets, in seconds.
pub(crate) const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters and histograms of the requests served so far.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Series>,
}

#[derive(Debug, Default)]
struct Series {
    /// `(method, path, status)` -> count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// `(method, path)` -> latency histogram.
    durations: BTreeMap<(String, String), Histogram>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Non-cumulative count per bucket of [`BUCKETS`]; the `+Inf` bucket is `count`.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Records one served request. `path` is the matched route, not the raw URI, so the
    /// label set stays bounded.
    pub(crate) fn observe(&self, method: &str, path: &str, status: u16, seconds: f64) {
        let mut series = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *series
            .requests
            .entry((method.to_owned(), path.to_owned(), status))
            .or_default() += 1;
        let histogram = series
            .durations
            .entry((method.to_owned(), path.to_owned()))
            .or_default();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[index] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Renders every series in the Prometheus text exposition format (version 0.0.4).
    /// `resident_bytes` is the process RSS, left out when unknown.
    pub(crate) fn render(&self, resident_bytes: Option<u64>, start_time_seconds: f64) -> String {
        let series = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests served.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((method, path, status), count) in &series.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",path=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(path),
            );
        }
        out.push_str("# HELP http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((method, path), histogram) in &series.durations {
            let labels = format!("method=\"{}\",path=\"{}\"", escape(method), escape(path));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        if let Some(bytes) = resident_bytes {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
        }
        out.push_str(
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n",
        );
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(out, "process_start_time_seconds {start_time_seconds}");
        out
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_by_method_path_and_status() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/items", 200, 0.002);
        metrics.observe("GET", "/items", 200, 0.003);
        metrics.observe("GET", "/items", 500, 0.003);
        let text = metrics.render(None, 0.0);
        assert!(
            text.contains("http_requests_total{method=\"GET\",path=\"/items\",status=\"200\"} 2\n")
        );
        assert!(
            text.contains("http_requests_total{method=\"GET\",path=\"/items\",status=\"500\"} 1\n")
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/work", 200, 0.004);
        metrics.observe("GET", "/work", 200, 0.2);
        metrics.observe("GET", "/work", 200, 60.0);
        let text = metrics.render(None, 0.0);
        let bucket = |le: &str| {
            format!(
                "http_request_duration_seconds_bucket{{method=\"GET\",path=\"/work\",le=\"{le}\"}}"
            )
        };
        assert!(text.contains(&format!("{} 1\n", bucket("0.005"))));
        assert!(text.contains(&format!("{} 1\n", bucket("0.1"))));
        assert!(text.contains(&format!("{} 2\n", bucket("0.25"))));
        assert!(text.contains(&format!("{} 2\n", bucket("10"))));
        assert!(text.contains(&format!("{} 3\n", bucket("+Inf"))));
        assert!(
            text.contains("http_request_duration_seconds_count{method=\"GET\",path=\"/work\"} 3\n")
        );
        assert!(
            text.contains(
                "http_request_duration_seconds_sum{method=\"GET\",path=\"/work\"} 60.204"
            )
        );
    }

    #[test]
    fn every_sample_line_parses_as_name_labels_value() {
        let metrics = Metrics::default();
        metrics.observe("POST", "/sessions", 201, 0.01);
        let text = metrics.render(Some(1_048_576), 1_700_000_000.5);
        assert!(text.contains("# TYPE http_request_duration_seconds histogram\n"));
        assert!(text.contains("process_resident_memory_bytes 1048576\n"));
        assert!(text.contains("process_start_time_seconds 1700000000.5\n"));
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "value in {line:?}");
            assert!(
                series.starts_with("http_") || series.starts_with("process_"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn empty_registry_still_renders_process_metrics() {
        let text = Metrics::default().render(Some(10), 1.0);
        assert!(text.contains("process_resident_memory_bytes 10\n"));
        assert!(!text.contains("http_requests_total{"));
    }
}
