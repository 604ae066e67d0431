//! The node's Prometheus metrics: requests and their latency by route pattern (never by concrete
//! path, so ids neither leak nor explode the label space), and the reports stored per origin and
//! the envelopes queued per partner, read from the store at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{DeliveryState, ReportCount};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecipientLabels {
    recipient: String,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The registry and the metrics the API records into.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    reports: Family<OriginLabels, Gauge>,
    queued: Family<RecipientLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lagesbild");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let reports = Family::<OriginLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route pattern and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern and status",
            latency.clone(),
        );
        registry.register(
            "reports_stored",
            "Reports in the situation store by origin, retracted included",
            reports.clone(),
        );
        let queued = Family::<RecipientLabels, Gauge>::default();
        registry.register("outbox_queued", "Envelopes waiting to be acknowledged, by partner", queued.clone());
        Self { registry, requests, latency, reports, queued }
    }

    /// Records one answered request. `route` is the matched pattern, such as `/api/v1/reports/{id}`.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text, with the report counts and outbox depths read just now.
    pub fn render(
        &self,
        counts: &[ReportCount],
        deliveries: &[(String, DeliveryState)],
    ) -> Result<String, std::fmt::Error> {
        self.reports.clear();
        for count in counts {
            self.reports.get_or_create(&OriginLabels { origin: count.origin.clone() }).set(count.reports);
        }
        self.queued.clear();
        for (recipient, state) in deliveries {
            self.queued.get_or_create(&RecipientLabels { recipient: recipient.clone() }).set(state.queued);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
