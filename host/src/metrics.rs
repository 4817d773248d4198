//! Request counters and latency histograms, rendered as Prometheus text at `/metrics`.
//!
//! Hand-rolled on atomics: the set of series is small and fixed (per component and status
//! class), so a metrics crate would add dependencies without adding anything we need.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters for one component.
#[derive(Default)]
struct ComponentSeries {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    /// Cumulative histogram counts, one per bucket, plus +Inf.
    buckets: [u64; BUCKETS_S.len() + 1],
    /// Sum of durations in seconds.
    duration_sum_s: f64,
    /// Instances created.
    instances_created: u64,
    /// Instances that ended with a trap or panic.
    traps: u64,
    /// Instances torn down because a request overran its deadline.
    timeouts: u64,
}

/// All metrics of one host process.
#[derive(Default)]
pub struct Metrics {
    components: Mutex<BTreeMap<String, ComponentSeries>>,
    host_requests: AtomicU64,
    rejected_overload: AtomicU64,
}

impl Metrics {
    /// Records one finished request handled by `component`.
    pub fn record_request(&self, component: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        // The id is known after the first request: look it up before allocating a key.
        if !map.contains_key(component) {
            map.insert(component.to_string(), ComponentSeries::default());
        }
        let Some(series) = map.get_mut(component) else {
            return;
        };
        *series.by_status.entry(status).or_default() += 1;
        series.duration_sum_s += secs;
        let slot = BUCKETS_S
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS_S.len());
        series.buckets[slot] += 1;
    }

    /// Records that a new instance of `component` was created.
    pub fn record_instance(&self, component: &str) {
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(component.to_string())
            .or_default()
            .instances_created += 1;
    }

    /// Records that an instance of `component` trapped or panicked (and was discarded).
    pub fn record_trap(&self, component: &str) {
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(component.to_string()).or_default().traps += 1;
    }

    /// Records that an instance of `component` was torn down after a request overran its
    /// deadline.
    pub fn record_timeout(&self, component: &str) {
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(component.to_string()).or_default().timeouts += 1;
    }

    /// Records a request served by the host itself (`/health`, `/metrics`, 404s).
    pub fn record_host_request(&self) {
        self.host_requests.fetch_add(1, Relaxed);
    }

    /// Records a request refused because the host was at its concurrency limit.
    pub fn record_overload(&self) {
        self.rejected_overload.fetch_add(1, Relaxed);
    }

    /// The total number of requests recorded for `component` with `status`.
    pub fn requests(&self, component: &str, status: u16) -> u64 {
        let map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        map.get(component)
            .and_then(|s| s.by_status.get(&status).copied())
            .unwrap_or(0)
    }

    /// Renders every series in the Prometheus text exposition format, followed by `extra`
    /// (already formatted series from other modules, e.g. Redis counters).
    pub fn render(&self, extra: &str) -> String {
        let map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP redwasm_http_requests_total HTTP requests handled by components.\n");
        out.push_str("# TYPE redwasm_http_requests_total counter\n");
        for (name, s) in map.iter() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "redwasm_http_requests_total{{component=\"{}\",status=\"{status}\"}} {n}",
                    escape(name)
                );
            }
        }
        out.push_str(
            "# HELP redwasm_http_request_duration_seconds Time from request to response head.\n",
        );
        out.push_str("# TYPE redwasm_http_request_duration_seconds histogram\n");
        for (name, s) in map.iter() {
            let name = escape(name);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS_S.iter().enumerate() {
                cumulative += s.buckets[i];
                let _ = writeln!(
                    out,
                    "redwasm_http_request_duration_seconds_bucket{{component=\"{name}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += s.buckets[BUCKETS_S.len()];
            let _ = writeln!(
                out,
                "redwasm_http_request_duration_seconds_bucket{{component=\"{name}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "redwasm_http_request_duration_seconds_sum{{component=\"{name}\"}} {}",
                s.duration_sum_s
            );
            let _ = writeln!(
                out,
                "redwasm_http_request_duration_seconds_count{{component=\"{name}\"}} {cumulative}"
            );
        }
        out.push_str("# HELP redwasm_instances_created_total Component instances created.\n");
        out.push_str("# TYPE redwasm_instances_created_total counter\n");
        for (name, s) in map.iter() {
            let _ = writeln!(
                out,
                "redwasm_instances_created_total{{component=\"{}\"}} {}",
                escape(name),
                s.instances_created
            );
        }
        out.push_str("# HELP redwasm_instance_traps_total Instances discarded after a trap.\n");
        out.push_str("# TYPE redwasm_instance_traps_total counter\n");
        for (name, s) in map.iter() {
            let _ = writeln!(
                out,
                "redwasm_instance_traps_total{{component=\"{}\"}} {}",
                escape(name),
                s.traps
            );
        }
        out.push_str(
            "# HELP redwasm_instance_timeouts_total Instances torn down after a request overran its deadline.\n",
        );
        out.push_str("# TYPE redwasm_instance_timeouts_total counter\n");
        for (name, s) in map.iter() {
            let _ = writeln!(
                out,
                "redwasm_instance_timeouts_total{{component=\"{}\"}} {}",
                escape(name),
                s.timeouts
            );
        }
        out.push_str("# HELP redwasm_host_requests_total Requests answered by the host itself.\n");
        out.push_str("# TYPE redwasm_host_requests_total counter\n");
        let _ = writeln!(
            out,
            "redwasm_host_requests_total {}",
            self.host_requests.load(Relaxed)
        );
        out.push_str(
            "# HELP redwasm_rejected_overload_total Requests refused at the concurrency limit.\n",
        );
        out.push_str("# TYPE redwasm_rejected_overload_total counter\n");
        let _ = writeln!(
            out,
            "redwasm_rejected_overload_total {}",
            self.rejected_overload.load(Relaxed)
        );
        out.push_str(extra);
        out
    }
}

/// Escapes a label value per the exposition format.
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
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("cache", 200, Duration::from_micros(300));
        m.record_request("cache", 200, Duration::from_millis(30));
        m.record_request("cache", 404, Duration::from_secs(10));
        let text = m.render("");
        assert!(text.contains("redwasm_http_requests_total{component=\"cache\",status=\"200\"} 2"));
        assert!(text.contains("redwasm_http_requests_total{component=\"cache\",status=\"404\"} 1"));
        assert!(text.contains(
            "redwasm_http_request_duration_seconds_bucket{component=\"cache\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "redwasm_http_request_duration_seconds_bucket{component=\"cache\",le=\"0.05\"} 2"
        ));
        assert!(text.contains(
            "redwasm_http_request_duration_seconds_bucket{component=\"cache\",le=\"+Inf\"} 3"
        ));
        assert_eq!(m.requests("cache", 200), 2);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
