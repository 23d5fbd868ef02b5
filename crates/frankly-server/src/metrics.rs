//! Prometheus metrics (`/metrics`, text exposition format), through the
//! Prometheus project's `prometheus-client`. Queue depths are read from the
//! database at scrape time, so every instance reports the shared queue.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::ServerError;
use crate::db::Db;

type Labels = Vec<(String, String)>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Report envelopes received.
    pub reports_received: Counter,
    /// Reports committed.
    pub reports_accepted: Counter,
    /// Reports refused, by code.
    pub reports_refused: Family<Labels, Counter>,
    /// Reports whose reported message did not verify: answered like any
    /// other (no oracle) and not queued.
    pub reports_unverified: Counter,
    /// Intake transactions committed.
    pub intake_batches: Counter,
    /// Decisions, by action.
    pub decisions: Family<Labels, Counter>,
    /// Seconds from intake to decision.
    pub decision_latency: Histogram,
    /// Messages relayed.
    pub relayed: Counter,
    /// Tags made (one per delivered copy).
    pub tags: Counter,
    /// Failed sign-ins.
    pub login_failures: Counter,
    /// Connections closed at once because the connection cap was reached.
    pub connections_refused: Counter,
    /// Requests refused before their handler ran (body too large), by code.
    pub requests_refused: Family<Labels, Counter>,
    /// Reports per queue and status.
    queue_depth: Family<Labels, Gauge>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("frankly");
        let m = Metrics {
            reports_received: Counter::default(),
            reports_accepted: Counter::default(),
            reports_refused: Family::default(),
            reports_unverified: Counter::default(),
            intake_batches: Counter::default(),
            decisions: Family::default(),
            decision_latency: Histogram::new([1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 259200.0]),
            relayed: Counter::default(),
            tags: Counter::default(),
            login_failures: Counter::default(),
            connections_refused: Counter::default(),
            requests_refused: Family::default(),
            queue_depth: Family::default(),
            registry: Registry::default(),
        };
        registry.register("reports_received", "Report envelopes received", m.reports_received.clone());
        registry.register(
            "reports_accepted",
            "Reports verified (a repeat of a report is answered alike and stored once)",
            m.reports_accepted.clone(),
        );
        registry.register("reports_refused", "Reports refused, by reason", m.reports_refused.clone());
        registry.register(
            "reports_unverified",
            "Reports whose reported message did not verify (answered like any other, not queued)",
            m.reports_unverified.clone(),
        );
        registry.register("intake_batches", "Intake transactions committed", m.intake_batches.clone());
        registry.register("decisions", "Moderator decisions, by action", m.decisions.clone());
        registry.register(
            "decision_latency_seconds",
            "Time from a report's intake to its decision",
            m.decision_latency.clone(),
        );
        registry.register("relayed_messages", "Messages stored by the relay", m.relayed.clone());
        registry.register("platform_tags", "Platform tags made by /v1/frank", m.tags.clone());
        registry.register("login_failures", "Failed sign-ins", m.login_failures.clone());
        registry.register(
            "connections_refused",
            "Connections closed at once because max_http_connections was reached",
            m.connections_refused.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests refused before their handler ran, by reason",
            m.requests_refused.clone(),
        );
        registry.register("queue_depth", "Reports per queue and status", m.queue_depth.clone());
        Metrics { registry, ..m }
    }

    /// Counts a refusal.
    pub(crate) fn refused(&self, code: &str) {
        self.reports_refused.get_or_create(&vec![("reason".to_string(), code.to_string())]).inc();
    }

    /// Counts a request refused before its handler.
    pub(crate) fn request_refused(&self, code: &str) {
        self.requests_refused.get_or_create(&vec![("reason".to_string(), code.to_string())]).inc();
    }

    /// Counts a decision.
    pub(crate) fn decided(&self, action: &str, latency_ms: i64) {
        self.decisions.get_or_create(&vec![("action".to_string(), action.to_string())]).inc();
        #[allow(clippy::cast_precision_loss)]
        self.decision_latency.observe(latency_ms.max(0) as f64 / 1000.0);
    }

    /// The text exposition, with queue depths read now.
    pub async fn render(&self, db: &Db) -> Result<String, ServerError> {
        for d in crate::queue::depths(db).await? {
            for (status, n) in [("queued", d.queued), ("claimed", d.claimed)] {
                self.queue_depth
                    .get_or_create(&vec![
                        ("queue".to_string(), d.queue.name().to_string()),
                        ("status".to_string(), status.into()),
                    ])
                    .set(n);
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| ServerError::Internal(e.to_string()))?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
