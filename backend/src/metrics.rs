//! The server's metrics in the Prometheus text format (`GET /api/metrics` when
//! `metrics.enabled`): requests by route template and status with their durations, the job
//! queue, job durations by kind and outcome, pairs scored by jobs, and the example browser's
//! cache hits and misses. One registry per process;
//! the request log's middleware and the job runner record into it.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Histograms of seconds, 1 ms to about 9 h.
#[derive(Clone)]
struct Seconds;

impl MetricConstructor<Histogram> for Seconds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.001, 4.0, 13))
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, Seconds>,
    jobs_queued: Gauge,
    jobs_running: Family<Labels, Gauge>,
    job_seconds: Family<Labels, Histogram, Seconds>,
    scored_pairs: Counter,
    cache_requests: Family<Labels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("seal");
    let requests = Family::<Labels, Counter>::default();
    let request_seconds = Family::new_with_constructor(Seconds);
    let jobs_queued = Gauge::default();
    let jobs_running = Family::<Labels, Gauge>::default();
    let job_seconds = Family::new_with_constructor(Seconds);
    let scored_pairs = Counter::default();
    let cache_requests = Family::<Labels, Counter>::default();
    registry.register("http_requests", "API and UI requests by route template, method and status", requests.clone());
    registry.register("http_request_duration_seconds", "Time to answer, by route template", request_seconds.clone());
    registry.register("jobs_queued", "Jobs waiting for a slot", jobs_queued.clone());
    registry.register("jobs_running", "Jobs running, by kind", jobs_running.clone());
    registry.register("job_duration_seconds", "Run time of ended job attempts, by kind and state", job_seconds.clone());
    registry.register(
        "scored_pairs",
        "Pairs scored by jobs of this server (rate: scoring throughput)",
        scored_pairs.clone(),
    );
    registry.register(
        "cache_requests",
        "Lookups in the example browser's caches (study, pair_index, view, sort_ranks), by result (hit, miss)",
        cache_requests.clone(),
    );
    Metrics {
        registry,
        requests,
        request_seconds,
        jobs_queued,
        jobs_running,
        job_seconds,
        scored_pairs,
        cache_requests,
    }
});

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// One answered request.
pub fn request(route: &str, method: &str, status: u16, seconds: f64) {
    let status = status.to_string();
    // HTTP allows any token as a method: one series each would let anyone grow them.
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "other",
    };
    METRICS.requests.get_or_create(&labels(&[("route", route), ("method", method), ("status", &status)])).inc();
    METRICS.request_seconds.get_or_create(&labels(&[("route", route)])).observe(seconds);
}

/// The queue's length and the running jobs of each kind, now.
pub fn jobs(queued: usize, running: &[(&str, usize)]) {
    METRICS.jobs_queued.set(queued as i64);
    for (kind, n) in running {
        METRICS.jobs_running.get_or_create(&labels(&[("kind", kind)])).set(*n as i64);
    }
}

/// A job attempt ended.
pub fn job_ended(kind: &str, state: &str, seconds: f64) {
    METRICS.job_seconds.get_or_create(&labels(&[("kind", kind), ("state", state)])).observe(seconds);
}

/// Pairs a job committed scores for.
pub fn scored(pairs: u64) {
    METRICS.scored_pairs.inc_by(pairs);
}

/// One lookup in a cache of the example browser: found, or loaded now.
pub fn cache(cache: &str, hit: bool) {
    METRICS
        .cache_requests
        .get_or_create(&labels(&[("cache", cache), ("result", if hit { "hit" } else { "miss" })]))
        .inc();
}

/// Every metric, in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &METRICS.registry);
    out
}
