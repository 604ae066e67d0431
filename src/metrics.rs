//! The node's Prometheus metrics: requests and their latency by route pattern (never by concrete
//! path, so ids neither leak nor explode the label space); and, read at scrape time, the reports
//! stored per origin, the envelopes queued per partner, each partner's last contact and block, the
//! envelopes refused so far, the latest verification of the audit trail, and when the node's
//! certificate and any overlapping TLS pin end: what `deploy/prometheus/alerts.yml` watches.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use chrono::{DateTime, Utc};

use crate::store::{DeliveryState, PartnerRecord, ReportCount};

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabels {
    partner: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrgLabels {
    org: String,
}

/// What the node knows at a scrape, for the metrics read from it.
pub struct Facts<'a> {
    pub counts: &'a [ReportCount],
    pub deliveries: &'a [(String, DeliveryState)],
    pub partners: &'a [PartnerRecord],
    /// Envelopes refused into the dead-letter table so far.
    pub dead_letters: i64,
    /// Whether the trail verified at its latest verification, and when.
    pub audit: Option<(bool, DateTime<Utc>)>,
    /// When the node's federation certificate ends, if it has one.
    pub certificate_expiry: Option<DateTime<Utc>>,
    /// Each TLS pin (this node's or a partner's) accepted only until a moment: whose, and until when.
    pub pin_overlaps: Vec<(String, DateTime<Utc>)>,
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
    last_contact: Family<PartnerLabels, Gauge>,
    blocked: Family<PartnerLabels, Gauge>,
    dead_letters: Counter,
    audit_intact: Gauge,
    audit_verified: Gauge,
    certificate_expiry: Gauge,
    pin_overlap_end: Family<OrgLabels, Gauge>,
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
        let last_contact = Family::<PartnerLabels, Gauge>::default();
        registry.register(
            "partner_last_contact_timestamp_seconds",
            "When the partner's node last answered (Unix time; 0: never)",
            last_contact.clone(),
        );
        let blocked = Family::<PartnerLabels, Gauge>::default();
        registry.register("partner_blocked", "1 while the partner is blocked at the handshake", blocked.clone());
        let dead_letters = Counter::default();
        registry.register(
            "dead_letters",
            "Envelopes from partners refused into the dead-letter table",
            dead_letters.clone(),
        );
        let audit_intact = Gauge::default();
        registry.register(
            "audit_chain_intact",
            "1 if the audit trail verified at its latest verification",
            audit_intact.clone(),
        );
        let audit_verified = Gauge::default();
        registry.register(
            "audit_verified_timestamp_seconds",
            "When the audit trail was last verified (Unix time; 0: not yet)",
            audit_verified.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the node's federation certificate ends (Unix time)",
            certificate_expiry.clone(),
        );
        let pin_overlap_end = Family::<OrgLabels, Gauge>::default();
        registry.register(
            "tls_pin_overlap_end_timestamp_seconds",
            "When an overlapping TLS pin (after a key rotation) stops being accepted, by organisation (Unix time)",
            pin_overlap_end.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            reports,
            queued,
            last_contact,
            blocked,
            dead_letters,
            audit_intact,
            audit_verified,
            certificate_expiry,
            pin_overlap_end,
        }
    }

    /// Records one answered request. `route` is the matched pattern, such as `/api/v1/reports/{id}`.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text, with the node's facts read just now.
    pub fn render(&self, facts: &Facts<'_>) -> Result<String, std::fmt::Error> {
        self.reports.clear();
        for count in facts.counts {
            self.reports.get_or_create(&OriginLabels { origin: count.origin.clone() }).set(count.reports);
        }
        self.queued.clear();
        for (recipient, state) in facts.deliveries {
            self.queued.get_or_create(&RecipientLabels { recipient: recipient.clone() }).set(state.queued);
        }
        self.last_contact.clear();
        self.blocked.clear();
        for partner in facts.partners {
            let labels = PartnerLabels { partner: partner.org_id.to_string() };
            self.last_contact.get_or_create(&labels).set(partner.last_contact_at.map_or(0, |t| t.timestamp()));
            self.blocked.get_or_create(&labels).set(i64::from(partner.blocked));
        }
        // A counter only goes up: it follows the table's highest id.
        let so_far = u64::try_from(facts.dead_letters).unwrap_or(0);
        self.dead_letters.inc_by(so_far.saturating_sub(self.dead_letters.get()));
        let (intact, verified) = facts.audit.map_or((0, 0), |(ok, at)| (i64::from(ok), at.timestamp()));
        self.audit_intact.set(intact);
        self.audit_verified.set(verified);
        self.certificate_expiry.set(facts.certificate_expiry.map_or(0, |t| t.timestamp()));
        self.pin_overlap_end.clear();
        for (org, until) in &facts.pin_overlaps {
            self.pin_overlap_end.get_or_create(&OrgLabels { org: org.clone() }).set(until.timestamp());
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
