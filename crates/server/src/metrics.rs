//! Prometheus metrics, kept in atomics and rendered as text on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A fixed-bucket histogram of seconds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, secs: f64) {
        let secs = secs.max(0.0);
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
    }
}

/// Request outcomes counted on `brevet_requests_total{outcome=…}`.
pub const OUTCOMES: [&str; 7] = [
    "denied",
    "pending",
    "auto_approved",
    "approved",
    "cancelled",
    "expired",
    "breakglass",
];

pub struct Metrics {
    outcomes: [AtomicU64; 7],
    /// Cedar evaluation time.
    pub policy_eval: Histogram,
    /// From request creation to the final decision.
    pub time_to_decision: Histogram,
    /// How late the sweeper ended a grant after its `not_after`.
    pub expiry_lag: Histogram,
    alerts: [AtomicU64; 1],
    /// Grants a device refused to apply.
    pub device_rejections: AtomicU64,
    /// Devices enrolled (and certificates renewed).
    pub enrollments: AtomicU64,
    pub renewals: AtomicU64,
    /// Device long-polls being held right now.
    pub polls_waiting: AtomicI64,
    /// The syslog forwarder's progress.
    pub syslog: crate::forward::SyslogMetrics,
    /// Webhook POSTs answered 2xx, and those that failed (no answer, or another status).
    pub webhooks_delivered: AtomicU64,
    pub webhooks_failed: AtomicU64,
    /// Webhook deliveries not attempted: the host resolved to a non-public address.
    pub webhooks_blocked: AtomicU64,
    /// Connections at the edge (`edge`).
    pub edge: std::sync::Arc<crate::edge::EdgeMetrics>,
}

/// Alert kinds counted on `brevet_alerts_total{kind=…}`.
pub const ALERTS: [&str; 1] = ["revocation_unconfirmed"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            outcomes: Default::default(),
            policy_eval: Histogram::new(&[0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.01]),
            time_to_decision: Histogram::new(&[0.01, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 86400.0]),
            expiry_lag: Histogram::new(&[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0]),
            alerts: Default::default(),
            device_rejections: AtomicU64::new(0),
            enrollments: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            polls_waiting: AtomicI64::new(0),
            syslog: Default::default(),
            webhooks_delivered: AtomicU64::new(0),
            webhooks_failed: AtomicU64::new(0),
            webhooks_blocked: AtomicU64::new(0),
            edge: Default::default(),
        }
    }
}

impl Metrics {
    pub fn outcome(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn alert(&self, kind: &str) {
        if let Some(i) = ALERTS.iter().position(|k| *k == kind) {
            self.alerts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders everything; `active_grants` is read from the database at scrape time.
    pub fn render(&self, active_grants: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP brevet_requests_total Elevation requests by outcome.\n# TYPE brevet_requests_total counter\n");
        for (o, c) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(
                out,
                "brevet_requests_total{{outcome=\"{o}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP brevet_active_grants Grants issued or active now.\n# TYPE brevet_active_grants gauge\nbrevet_active_grants {active_grants}"
        );
        self.policy_eval.render(
            "brevet_policy_eval_seconds",
            "Cedar evaluation time.",
            &mut out,
        );
        self.time_to_decision.render(
            "brevet_time_to_decision_seconds",
            "Time from request to final decision.",
            &mut out,
        );
        self.expiry_lag.render(
            "brevet_expiry_lag_seconds",
            "Delay between a grant's not_after and its expiry by the server.",
            &mut out,
        );
        self.render_devices(&mut out);
        self.syslog.render(&mut out);
        self.edge.render(&mut out);
        crate::hashing::POOL.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP brevet_logins_throttled_total Logins and step-up codes refused as throttled.\n# TYPE brevet_logins_throttled_total counter\nbrevet_logins_throttled_total {}",
            crate::throttle::THROTTLED.load(Ordering::Relaxed)
        );
        out
    }

    fn render_devices(&self, out: &mut String) {
        out.push_str("# HELP brevet_alerts_total Alerts raised, by kind.\n# TYPE brevet_alerts_total counter\n");
        for (k, c) in ALERTS.iter().zip(&self.alerts) {
            let _ = writeln!(
                out,
                "brevet_alerts_total{{kind=\"{k}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let counters = [
            (
                "brevet_grants_rejected_by_device_total",
                "Grants a device refused to apply.",
                &self.device_rejections,
            ),
            (
                "brevet_device_enrollments_total",
                "Devices enrolled.",
                &self.enrollments,
            ),
            (
                "brevet_device_cert_renewals_total",
                "Device certificates renewed.",
                &self.renewals,
            ),
            (
                "brevet_webhook_deliveries_total",
                "Webhook POSTs answered with a 2xx.",
                &self.webhooks_delivered,
            ),
            (
                "brevet_webhook_failures_total",
                "Webhook POSTs that failed (no answer in time, or another status); each is retried.",
                &self.webhooks_failed,
            ),
            (
                "brevet_webhook_blocked_total",
                "Webhook deliveries not attempted because the host resolved to a loopback, private or other non-public address; each is retried.",
                &self.webhooks_blocked,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP brevet_device_polls_waiting Device long-polls held open now.\n# TYPE brevet_device_polls_waiting gauge\nbrevet_device_polls_waiting {}",
            self.polls_waiting.load(Ordering::Relaxed)
        );
    }
}
