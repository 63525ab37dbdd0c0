//! Building Cedar queries from stored facts, and timing the evaluation.

use std::time::Instant;

use brevet_policy::{Action, Context, Decision, NO_MFA, PrincipalKind, Query, Ticket};
use brevet_proto::api::{DecisionView, DeviceView};
use brevet_proto::timefmt::hour_and_weekday;
use brevet_store::UserRecord;

use crate::app::App;

/// What the policy is asked about, apart from who and which action.
pub struct Facts<'a> {
    pub device: &'a DeviceView,
    pub role: &'a str,
    pub duration_seconds: u64,
    pub ticket: Option<&'a str>,
    pub mfa_age_seconds: Option<i64>,
}

pub fn decide(app: &App, user: &UserRecord, action: Action, f: &Facts<'_>) -> Decision {
    let (hour_utc, weekday) = hour_and_weekday(app.clock.now());
    // No ticketing system is connected yet: a ticket id is checked for form only, and the
    // facts only a ticketing system could confirm are false (docs/policy-context.md).
    let ticket = Ticket {
        present: f.ticket.is_some(),
        id: f.ticket.unwrap_or_default().to_owned(),
        valid: f.ticket.is_some(),
        state: if f.ticket.is_some() {
            "unverified"
        } else {
            "none"
        }
        .to_owned(),
        assignee_matches: false,
        device_listed: false,
        window_ok: false,
    };
    let context = Context {
        duration_seconds: i64::try_from(f.duration_seconds).unwrap_or(i64::MAX),
        ticket,
        mfa_age_seconds: f.mfa_age_seconds.unwrap_or(NO_MFA),
        hour_utc,
        weekday: weekday.to_owned(),
    };
    let query = Query {
        user: &user.name,
        groups: &user.groups,
        kind: PrincipalKind::Human,
        action,
        device: &f.device.name,
        device_groups: &f.device.groups,
        device_tags: &f.device.tags,
        device_os: &f.device.os,
        role: f.role,
        context: &context,
    };
    let started = Instant::now();
    let decision = app.policy.decide(&query);
    app.metrics
        .policy_eval
        .observe(started.elapsed().as_secs_f64());
    decision
}

pub fn view(outcome: &str, d: &Decision) -> DecisionView {
    DecisionView {
        outcome: outcome.to_owned(),
        policies: d.policies.clone(),
        explain: d.explain(),
    }
}
