//! `brevet-bench cedar`: the latency of one [`Engine::decide`], the call the server makes once or
//! twice per request (request, auto-approve) and once per approval.
//!
//! The policy is the one `brevetd init` writes plus three realistic `forbid`s from its comments.
//! Four query shapes (an operator's request, an approval, and two requests a `forbid` denies) are
//! decided in turn; every decision is timed on its own with `Instant`, after a warm-up. The
//! expected verdict of each shape is checked, so the loop cannot measure a shortcut.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use brevet_policy::{Action, Context, DEFAULT_POLICY, Engine, PrincipalKind, Query, Ticket};

use crate::stats::Summary;

/// The `forbid`s added to the default policy (from the examples in its comments).
const FORBIDS: &str = r#"
@id("forbid-prod-weekend")
forbid (principal, action in Action::"elevation", resource)
when {
  resource.hasTag("env") && resource.getTag("env") == "prod" &&
  (context.weekday == "sat" || context.weekday == "sun")
};

@id("prod-needs-ticket")
forbid (principal, action == Action::"request", resource)
when { resource.hasTag("env") && resource.getTag("env") == "prod" }
unless { context.ticket.valid && context.ticket.assignee_matches };

@id("recent-mfa")
forbid (principal, action in Action::"elevation", resource)
when { principal.kind == "human" && context.mfa_age_seconds > 900 };
"#;

const WARM_UP: usize = 2_000;

/// What `cedar` measured.
#[derive(Debug, Clone)]
pub(crate) struct CedarReport {
    pub(crate) policies: usize,
    pub(crate) load: Duration,
    pub(crate) latency: Summary,
    pub(crate) per_second: f64,
}

/// An owned query, so a [`Query`] can borrow it.
struct Case {
    user: &'static str,
    groups: Vec<String>,
    action: Action,
    device_groups: Vec<String>,
    tags: BTreeMap<String, String>,
    context: Context,
    allowed: bool,
}

impl Case {
    fn query(&self) -> Query<'_> {
        Query {
            user: self.user,
            groups: &self.groups,
            kind: PrincipalKind::Human,
            action: self.action,
            device: "web-01",
            device_groups: &self.device_groups,
            device_tags: &self.tags,
            device_os: "linux",
            role: "pkg-update",
            context: &self.context,
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn cases() -> Vec<Case> {
    let context = Context {
        duration_seconds: 1800,
        ticket: Ticket {
            present: true,
            id: "CHG-1".into(),
            valid: true,
            state: "open".into(),
            assignee_matches: true,
            device_listed: true,
            window_ok: true,
        },
        mfa_age_seconds: 60,
        hour_utc: 10,
        weekday: "tue".into(),
    };
    let operator = Case {
        user: "alice",
        groups: strings(&["staff", "operators", "sre", "oncall", "eu"]),
        action: Action::Request,
        device_groups: strings(&["web", "eu-west", "linux"]),
        tags: [("env", "prod"), ("owner", "platform"), ("tier", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        context,
        allowed: true,
    };
    let approver = Case {
        user: "bob",
        groups: strings(&["staff", "approvers", "sre"]),
        action: Action::Approve,
        ..clone_case(&operator)
    };
    let mut no_ticket = clone_case(&operator);
    no_ticket.context.ticket.assignee_matches = false;
    no_ticket.allowed = false;
    let mut weekend = clone_case(&operator);
    weekend.context.weekday = "sat".into();
    weekend.allowed = false;
    vec![operator, approver, no_ticket, weekend]
}

fn clone_case(c: &Case) -> Case {
    Case {
        user: c.user,
        groups: c.groups.clone(),
        action: c.action,
        device_groups: c.device_groups.clone(),
        tags: c.tags.clone(),
        context: c.context.clone(),
        allowed: c.allowed,
    }
}

/// Runs `n` timed decisions.
pub(crate) fn run(n: usize) -> Result<CedarReport, String> {
    if n == 0 {
        return Err("`--n` must be at least 1".into());
    }
    let source = format!("{DEFAULT_POLICY}\n{FORBIDS}");
    let started = Instant::now();
    let engine =
        Engine::new(&source).map_err(|e| format!("the benchmark policy is invalid: {e}"))?;
    let load = started.elapsed();
    let cases = cases();
    for case in &cases {
        let d = engine.decide(&case.query());
        if d.allowed != case.allowed || !d.errors.is_empty() {
            return Err(format!(
                "unexpected decision for a `{}` query by `{}`: {}",
                case.action.as_str(),
                case.user,
                d.explain()
            ));
        }
    }
    for i in 0..WARM_UP {
        std::hint::black_box(engine.decide(&cases[i % cases.len()].query()));
    }

    let mut times = Vec::with_capacity(n);
    let mut wrong = 0usize;
    let loop_started = Instant::now();
    for i in 0..n {
        let case = &cases[i % cases.len()];
        let query = case.query();
        let t = Instant::now();
        let d = engine.decide(&query);
        times.push(t.elapsed());
        wrong += usize::from(d.allowed != case.allowed);
    }
    let wall = loop_started.elapsed();
    if wrong > 0 {
        return Err(format!("{wrong} of {n} decisions had the wrong verdict"));
    }
    Ok(CedarReport {
        policies: engine.len(),
        load,
        latency: Summary::of(&mut times),
        per_second: n as f64 / wall.as_secs_f64(),
    })
}

impl CedarReport {
    pub(crate) fn print(&self) {
        use crate::stats::us;
        let l = &self.latency;
        println!(
            "cedar: {} decisions, {} policies (default + 3 forbids), 4 query shapes in turn",
            l.count, self.policies
        );
        println!(
            "  policy load (parse + strict validation): {:.1} ms",
            self.load.as_secs_f64() * 1e3
        );
        println!(
            "  decide latency: p50 {} µs, p99 {} µs, max {} µs, mean {} µs",
            us(l.p50),
            us(l.p99),
            us(l.max),
            us(l.mean)
        );
        println!(
            "  throughput: {:.0} decisions/s (one thread)",
            self.per_second
        );
    }
}
