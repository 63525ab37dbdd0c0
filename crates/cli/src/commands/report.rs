//! `brevet report [--since TIME] [--html FILE]`: a compliance report for a period, computed here
//! from what the API already serves (requests, grants, findings), so it needs no rights beyond
//! reading those listings.
//!
//! The period runs from `--since` (default: 30 days before now) to now. A request belongs to it
//! when it was created in it; a grant when it was in force at some point in it (issued before the
//! end, not ended before the start). Unreadable times count as inside the period: a report never
//! hides a record it cannot place. The server lists at most [`LISTING_CAP`] of each, newest
//! first; when that may have cut records off, `truncated` says so (and the text says it aloud).
//!
//! [`build`] is pure: it takes the lists of views and the period, and everything printed (text,
//! `--json`, `--html`) is rendered from its [`Report`]. In the HTML page every value is escaped
//! (they are hostile input), the page loads nothing and its content security policy runs no
//! script; it is written to a temporary file beside the target and renamed into place.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use brevet_proto::agent::{DeviceFindings, Severity};
use brevet_proto::api::{GrantState, GrantView, PrivilegeView, RequestState, RequestView};
use brevet_proto::grant::GrantKind;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use serde::Serialize;
use serde::ser::SerializeMap;

use super::Ctx;
use crate::error::Error;
use crate::output::sanitize;
use render::{render_html, text, write_atomically};

/// The default period: the last 30 days.
const DEFAULT_PERIOD_SECS: i64 = 30 * 24 * 3600;

/// How many requests and grants the report asks for (the server's largest page).
const LISTING_CAP: usize = 1000;

/// How many users and devices the "top" lists show.
const TOP: usize = 10;

const REQUEST_STATES: [RequestState; 5] = [
    RequestState::Pending,
    RequestState::Approved,
    RequestState::Denied,
    RequestState::Cancelled,
    RequestState::Expired,
];

const GRANT_STATES: [GrantState; 5] = [
    GrantState::Issued,
    GrantState::Active,
    GrantState::Expired,
    GrantState::Revoked,
    GrantState::Completed,
];

const GRANT_KINDS: [GrantKind; 2] = [GrantKind::Normal, GrantKind::Breakglass];

/// Most severe first.
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    since: Option<&str>,
    html: Option<&Path>,
) -> Result<(), Error> {
    let until = ctx.env.now;
    let since = match since {
        Some(s) => {
            let t = parse_rfc3339("since", s)?;
            if t > until {
                return Err(Error::Invalid(brevet_proto::Error::Invalid {
                    field: "since",
                    value: s.to_owned(),
                    reason: "the time is in the future; pass a start in the past".to_owned(),
                }));
            }
            t
        }
        None => until.saturating_sub(DEFAULT_PERIOD_SECS),
    };
    let client = ctx.client()?;
    let (requests, grants) = client.newest(LISTING_CAP as u32)?;
    let findings = client.findings(None)?;
    let mut report = build(since, until, &requests, &grants, &findings);
    report.open_privileges = client.privileges(Some("unconfirmed"))?;
    report
        .open_privileges
        .extend(client.privileges(Some("pending"))?);
    match html {
        Some(path) => {
            write_atomically(path, render_html(&report).as_bytes())?;
            let shown = path.display().to_string();
            if ctx.global.json {
                crate::output::json(ctx.out, &serde_json::json!({ "html": shown }))
            } else {
                writeln!(ctx.out, "{}", sanitize(&shown))?;
                Ok(())
            }
        }
        None => ctx.show(&report, text),
    }
}

/// Counts under fixed keys, serialized as a JSON object in that order (zeros included, so the
/// keys are always there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counts(Vec<(&'static str, u64)>);

impl Counts {
    fn new(keys: impl IntoIterator<Item = &'static str>) -> Counts {
        Counts(keys.into_iter().map(|k| (k, 0)).collect())
    }

    fn bump(&mut self, key: &str) {
        if let Some((_, n)) = self.0.iter_mut().find(|(k, _)| *k == key) {
            *n += 1;
        }
    }

    pub(crate) fn get(&self, key: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, n)| *n)
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, n) in &self.0 {
            map.serialize_entry(k, n)?;
        }
        map.end()
    }
}

/// Everything the report says; the `--json` output as it is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) since: String,
    pub(crate) until: String,
    pub(crate) requests: RequestStats,
    pub(crate) grants: GrantStats,
    pub(crate) unconfirmed_removals: Vec<EndedGrant>,
    pub(crate) breakglass: Vec<BreakglassGrant>,
    pub(crate) top_users: Vec<Ranked>,
    pub(crate) top_devices: Vec<Ranked>,
    pub(crate) findings: FindingStats,
    /// Changes that give power and still lack a second administrator's confirmation:
    /// `unconfirmed` (in effect) and `pending` (waiting), whenever they were made.
    pub(crate) open_privileges: Vec<PrivilegeView>,
    pub(crate) truncated: Truncated,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestStats {
    pub(crate) total: u64,
    pub(crate) by_state: Counts,
    pub(crate) time_to_decision: DecisionTimes,
}

/// Seconds from a request's creation to its approval or denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DecisionTimes {
    pub(crate) decided: u64,
    pub(crate) median_seconds: Option<i64>,
    pub(crate) max_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GrantStats {
    pub(crate) total: u64,
    pub(crate) by_state: Counts,
    pub(crate) by_kind: Counts,
    /// Every grant of the period, newest first.
    pub(crate) items: Vec<GrantLine>,
}

/// One grant of the period, as an auditor reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GrantLine {
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) role: String,
    pub(crate) kind: String,
    pub(crate) state: String,
    pub(crate) ticket: Option<String>,
    pub(crate) approvers: Vec<String>,
    pub(crate) issued_at: String,
    pub(crate) ended_at: Option<String>,
    pub(crate) revocation_confirmed_at: Option<String>,
}

/// An ended grant whose removal the device has not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EndedGrant {
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) role: String,
    pub(crate) state: String,
    pub(crate) ended_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BreakglassGrant {
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) state: String,
    /// The reason of the grant's request, when the request is listed.
    pub(crate) reason: Option<String>,
    pub(crate) ticket: Option<String>,
    pub(crate) issued_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Ranked {
    pub(crate) name: String,
    pub(crate) grants: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingStats {
    pub(crate) devices_reporting: u64,
    pub(crate) by_severity: Counts,
    pub(crate) drift_by_severity: Counts,
}

/// Whether the server's listing limit may have left records of the period out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Truncated {
    pub(crate) requests: bool,
    pub(crate) grants: bool,
}

/// Builds the report for `since..=until` (unix seconds) from the listings.
pub(crate) fn build(
    since: i64,
    until: i64,
    requests: &[RequestView],
    grants: &[GrantView],
    findings: &[DeviceFindings],
) -> Report {
    let time = |s: &str| parse_rfc3339("time", s).ok();
    let in_period = |t: Option<i64>| t.is_none_or(|t| since <= t && t <= until);

    let period_requests: Vec<&RequestView> = requests
        .iter()
        .filter(|r| in_period(time(&r.created_at)))
        .collect();
    let mut by_state = Counts::new(REQUEST_STATES.map(RequestState::as_str));
    let mut waits = Vec::new();
    for r in &period_requests {
        by_state.bump(r.state.as_str());
        if matches!(r.state, RequestState::Approved | RequestState::Denied) {
            let decided = r.decided_at.as_deref().and_then(time);
            if let (Some(created), Some(decided)) = (time(&r.created_at), decided) {
                waits.push(decided.saturating_sub(created).max(0));
            }
        }
    }

    let period_grants: Vec<&GrantView> = grants
        .iter()
        .filter(|g| {
            let issued_before_end = time(&g.issued_at).is_none_or(|t| t <= until);
            let ended = g.ended_at.as_deref().and_then(time);
            issued_before_end && ended.is_none_or(|t| t >= since)
        })
        .collect();
    let mut grant_states = Counts::new(GRANT_STATES.map(GrantState::as_str));
    let mut kinds = Counts::new(GRANT_KINDS.map(GrantKind::as_str));
    let mut per_user: BTreeMap<&str, u64> = BTreeMap::new();
    let mut per_device: BTreeMap<&str, u64> = BTreeMap::new();
    for g in &period_grants {
        grant_states.bump(g.state.as_str());
        kinds.bump(g.kind.as_str());
        *per_user.entry(&g.user).or_default() += 1;
        *per_device.entry(&g.device).or_default() += 1;
    }

    let unconfirmed_removals = period_grants
        .iter()
        .filter(|g| !g.state.is_live() && g.revocation_confirmed_at.is_none())
        .map(|g| EndedGrant {
            id: g.id.clone(),
            user: g.user.clone(),
            device: g.device.clone(),
            role: g.role.clone(),
            state: g.state.as_str().to_owned(),
            ended_at: g.ended_at.clone(),
        })
        .collect();

    let reasons: HashMap<&str, &str> = requests
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    let breakglass = period_grants
        .iter()
        .filter(|g| g.kind == GrantKind::Breakglass)
        .map(|g| BreakglassGrant {
            id: g.id.clone(),
            user: g.user.clone(),
            device: g.device.clone(),
            state: g.state.as_str().to_owned(),
            reason: reasons.get(g.request_id.as_str()).map(|r| (*r).to_owned()),
            ticket: g.ticket.clone(),
            issued_at: g.issued_at.clone(),
        })
        .collect();

    let mut by_severity = Counts::new(SEVERITIES.map(severity));
    let mut drift_by_severity = Counts::new(SEVERITIES.map(severity));
    for d in findings {
        for f in &d.findings {
            by_severity.bump(severity(f.severity));
        }
        for f in &d.drift {
            drift_by_severity.bump(severity(f.severity));
        }
    }

    // Listings are newest first: when the oldest request listed is still in the period, older
    // ones in it may be missing. Any grant, however old, may still be in force.
    let oldest_request = requests.iter().filter_map(|r| time(&r.created_at)).min();
    let truncated = Truncated {
        requests: requests.len() >= LISTING_CAP && oldest_request.is_none_or(|t| t >= since),
        grants: grants.len() >= LISTING_CAP,
    };

    Report {
        since: rfc3339(since),
        until: rfc3339(until),
        requests: RequestStats {
            total: period_requests.len() as u64,
            by_state,
            time_to_decision: decision_times(waits),
        },
        grants: GrantStats {
            total: period_grants.len() as u64,
            by_state: grant_states,
            by_kind: kinds,
            items: period_grants
                .iter()
                .map(|g| GrantLine {
                    id: g.id.clone(),
                    user: g.user.clone(),
                    device: g.device.clone(),
                    role: g.role.clone(),
                    kind: g.kind.as_str().to_owned(),
                    state: g.state.as_str().to_owned(),
                    ticket: g.ticket.clone(),
                    approvers: g.approvers.clone(),
                    issued_at: g.issued_at.clone(),
                    ended_at: g.ended_at.clone(),
                    revocation_confirmed_at: g.revocation_confirmed_at.clone(),
                })
                .collect(),
        },
        unconfirmed_removals,
        breakglass,
        top_users: top(per_user),
        top_devices: top(per_device),
        findings: FindingStats {
            devices_reporting: findings.len() as u64,
            by_severity,
            drift_by_severity,
        },
        open_privileges: Vec::new(),
        truncated,
    }
}

/// The median (the mean of the two middle values for an even count, rounded down) and maximum.
fn decision_times(mut waits: Vec<i64>) -> DecisionTimes {
    waits.sort_unstable();
    let n = waits.len();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => waits.get(n / 2).copied(),
        _ => match (waits.get(n / 2 - 1), waits.get(n / 2)) {
            (Some(a), Some(b)) => Some(a / 2 + b / 2 + (a % 2 + b % 2) / 2),
            _ => None,
        },
    };
    DecisionTimes {
        decided: n as u64,
        median_seconds: median,
        max_seconds: waits.last().copied(),
    }
}

/// The `TOP` names with the most grants; ties by name.
fn top(counts: BTreeMap<&str, u64>) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = counts
        .into_iter()
        .map(|(name, grants)| Ranked {
            name: name.to_owned(),
            grants,
        })
        .collect();
    ranked.sort_by(|a, b| b.grants.cmp(&a.grants).then_with(|| a.name.cmp(&b.name)));
    ranked.truncate(TOP);
    ranked
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// `1h 2m 3s`, `45s`, `-` for none.
fn duration(secs: Option<i64>) -> String {
    let Some(secs) = secs else {
        return "-".to_owned();
    };
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The notes a reader must see: where the listing limit may have cut the period short.
mod render;
#[cfg(test)]
mod tests;
