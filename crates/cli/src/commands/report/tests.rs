use brevet_proto::agent::Finding;
use brevet_proto::api::DecisionView;
use brevet_proto::grant::SignedGrant;

use super::render::*;
use super::*;

const NOW: i64 = 1_795_860_000; // 2026-11-28T10:00:00Z
const DAY: i64 = 86_400;

fn at(t: i64) -> String {
    rfc3339(t)
}

fn request(id: &str, state: RequestState, created: i64, decided: Option<i64>) -> RequestView {
    RequestView {
        id: id.into(),
        state,
        user: "alice".into(),
        device: "web-01".into(),
        role: "pkg-update".into(),
        duration_seconds: 1800,
        ticket: Some("CHG-1".into()),
        reason: format!("reason of {id}"),
        start: None,
        created_at: at(created),
        expires_at: at(created + DAY),
        decided_at: decided.map(at),
        approvals_required: 1,
        approvals: Vec::new(),
        decision: DecisionView {
            outcome: "needs_approval".into(),
            policies: Vec::new(),
            explain: String::new(),
        },
        grant_id: None,
    }
}

fn grant(id: &str, user: &str, device: &str, state: GrantState, issued: i64) -> GrantView {
    GrantView {
        id: id.into(),
        request_id: format!("r-{id}"),
        state,
        user: user.into(),
        device: device.into(),
        role: "pkg-update".into(),
        runas: "root".into(),
        commands: vec!["/usr/bin/apt-get".into()],
        groups: Vec::new(),
        not_before: at(issued),
        not_after: at(issued + 1800),
        ticket: Some("CHG-1".into()),
        approvers: vec!["bob".into()],
        kind: GrantKind::Normal,
        issued_at: at(issued),
        ended_at: (!state.is_live()).then(|| at(issued + 600)),
        end_reason: None,
        ended_by: None,
        revocation_confirmed_at: (!state.is_live()).then(|| at(issued + 610)),
        signed: SignedGrant {
            doc: "{}".into(),
            sig: String::new(),
        },
    }
}

fn finding(severity: Severity) -> Finding {
    Finding {
        id: "f".into(),
        kind: "nopasswd".into(),
        severity,
        subject: "/etc/sudoers.d/x".into(),
        detail: "bob ALL=(ALL) NOPASSWD: ALL".into(),
        remediation: "remove the rule".into(),
    }
}

fn sample() -> Report {
    let requests = vec![
        request("r1", RequestState::Pending, NOW - 3600, None),
        request(
            "r2",
            RequestState::Approved,
            NOW - 2 * DAY,
            Some(NOW - 2 * DAY + 60),
        ),
        request(
            "r3",
            RequestState::Approved,
            NOW - DAY,
            Some(NOW - DAY + 300),
        ),
        request("r4", RequestState::Denied, NOW - DAY, Some(NOW - DAY + 120)),
        request("r5", RequestState::Expired, NOW - 5 * DAY, None),
        // Before the period: not counted.
        request(
            "r0",
            RequestState::Approved,
            NOW - 40 * DAY,
            Some(NOW - 40 * DAY + 9),
        ),
    ];
    let mut bg = grant("g3", "carol", "db-01", GrantState::Active, NOW - 7200);
    bg.kind = GrantKind::Breakglass;
    bg.request_id = "r1".into();
    let mut unconfirmed = grant("g4", "alice", "web-02", GrantState::Revoked, NOW - DAY);
    unconfirmed.revocation_confirmed_at = None;
    let grants = vec![
        grant("g1", "alice", "web-01", GrantState::Active, NOW - 600),
        grant(
            "g2",
            "alice",
            "web-01",
            GrantState::Completed,
            NOW - 2 * DAY,
        ),
        bg,
        unconfirmed,
        // Ended before the period: not counted.
        grant("g0", "dave", "web-09", GrantState::Expired, NOW - 40 * DAY),
    ];
    let findings = vec![
        DeviceFindings {
            device: "web-01".into(),
            reported_at: at(NOW),
            findings: vec![finding(Severity::Critical), finding(Severity::Low)],
            drift: vec![finding(Severity::Medium)],
        },
        DeviceFindings {
            device: "db-01".into(),
            reported_at: at(NOW),
            findings: vec![finding(Severity::Critical)],
            drift: Vec::new(),
        },
    ];
    build(NOW - 30 * DAY, NOW, &requests, &grants, &findings)
}

#[test]
fn counts_requests_and_grants_of_the_period() {
    let r = sample();
    assert_eq!(
        (r.since.as_str(), r.until.as_str()),
        ("2026-10-29T10:00:00Z", "2026-11-28T10:00:00Z")
    );
    assert_eq!(r.requests.total, 5);
    let s = &r.requests.by_state;
    assert_eq!(
        [
            s.get("pending"),
            s.get("approved"),
            s.get("denied"),
            s.get("cancelled"),
            s.get("expired")
        ],
        [1, 2, 1, 0, 1]
    );
    assert_eq!(
        r.requests.time_to_decision,
        DecisionTimes {
            decided: 3,
            median_seconds: Some(120),
            max_seconds: Some(300),
        }
    );
    assert_eq!(r.grants.total, 4);
    assert_eq!(r.grants.by_state.get("active"), 2);
    assert_eq!(r.grants.by_state.get("expired"), 0);
    assert_eq!(r.grants.by_kind.get("normal"), 3);
    assert_eq!(r.grants.by_kind.get("breakglass"), 1);
    assert_eq!(
        r.truncated,
        Truncated {
            requests: false,
            grants: false
        }
    );
}

#[test]
fn lists_unconfirmed_removals_breakglass_and_tops() {
    let r = sample();
    let ids: Vec<&str> = r
        .unconfirmed_removals
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(ids, ["g4"]);
    assert_eq!(r.breakglass.len(), 1);
    let bg = &r.breakglass[0];
    assert_eq!(
        (bg.id.as_str(), bg.user.as_str(), bg.device.as_str()),
        ("g3", "carol", "db-01")
    );
    assert_eq!(bg.reason.as_deref(), Some("reason of r1"));
    assert_eq!(bg.ticket.as_deref(), Some("CHG-1"));
    let users: Vec<(&str, u64)> = r
        .top_users
        .iter()
        .map(|x| (x.name.as_str(), x.grants))
        .collect();
    assert_eq!(users, [("alice", 3), ("carol", 1)]);
    let devices: Vec<(&str, u64)> = r
        .top_devices
        .iter()
        .map(|x| (x.name.as_str(), x.grants))
        .collect();
    assert_eq!(devices, [("web-01", 2), ("db-01", 1), ("web-02", 1)]);
    assert_eq!(r.findings.devices_reporting, 2);
    assert_eq!(r.findings.by_severity.get("critical"), 2);
    assert_eq!(r.findings.by_severity.get("low"), 1);
    assert_eq!(r.findings.drift_by_severity.get("medium"), 1);
}

#[test]
fn json_keys_are_stable() {
    let v = serde_json::to_value(sample()).unwrap();
    for k in [
        "since",
        "until",
        "requests",
        "grants",
        "unconfirmed_removals",
        "breakglass",
        "top_users",
        "top_devices",
        "findings",
        "truncated",
    ] {
        assert!(v.get(k).is_some(), "missing `{k}`: {v}");
    }
    assert_eq!(v["requests"]["by_state"]["cancelled"], 0);
    assert_eq!(v["grants"]["by_kind"]["breakglass"], 1);
    assert_eq!(v["findings"]["by_severity"]["info"], 0);
    assert_eq!(v["breakglass"][0]["issued_at"], at(NOW - 7200));
    let text = serde_json::to_string(&sample().requests.by_state).unwrap();
    assert_eq!(
        text,
        r#"{"pending":1,"approved":2,"denied":1,"cancelled":0,"expired":1}"#
    );
}

#[test]
fn an_empty_period_has_every_key_and_no_median() {
    let r = build(NOW - DAY, NOW, &[], &[], &[]);
    assert_eq!(r.requests.total, 0);
    assert_eq!(r.requests.time_to_decision.median_seconds, None);
    let mut out = Vec::new();
    text(&mut out, &r).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("median -, max - (0 decided)"), "{text}");
    assert!(text.contains("break-glass grants: 0\nnone\n"), "{text}");
}

#[test]
fn medians_of_even_counts_and_durations() {
    assert_eq!(decision_times(vec![10, 1, 4, 7]).median_seconds, Some(5));
    assert_eq!(decision_times(vec![3]).median_seconds, Some(3));
    assert_eq!(duration(Some(0)), "0s");
    assert_eq!(duration(Some(3723)), "1h 2m 3s");
    assert_eq!(duration(Some(DAY + 60)), "1d 1m");
}

#[test]
fn a_full_listing_is_marked_truncated() {
    let requests: Vec<RequestView> = (0..LISTING_CAP)
        .map(|i| request(&format!("r{i}"), RequestState::Pending, NOW - 60, None))
        .collect();
    let r = build(NOW - DAY, NOW, &requests, &[], &[]);
    assert!(r.truncated.requests);
    assert!(!r.truncated.grants);
    let mut out = Vec::new();
    text(&mut out, &r).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("note: the server lists at most 1000 requests")
    );
}

#[test]
fn the_text_report_has_every_section() {
    let mut out = Vec::new();
    text(&mut out, &sample()).unwrap();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "compliance report 2026-10-29T10:00:00Z to 2026-11-28T10:00:00Z",
        "requests: 5",
        "time to decision: median 2m, max 5m (3 decided)",
        "grants: 4",
        "breakglass  1",
        "removals not confirmed by the device: 1",
        "g4  alice  web-02",
        "reason of r1",
        "alice  3",
        "critical  2         0",
    ] {
        assert!(text.contains(needle), "lacks `{needle}`:\n{text}");
    }
}

#[test]
fn html_escapes_every_hostile_value() {
    let hostile = "<script>alert(1)</script>";
    let mut g = grant("g1", "alice", hostile, GrantState::Revoked, NOW - 60);
    g.kind = GrantKind::Breakglass;
    g.revocation_confirmed_at = None;
    g.ticket = Some("\"><img src=x onerror=alert(2)>".into());
    let mut req = request("r-g1", RequestState::Approved, NOW - 120, Some(NOW - 60));
    req.reason = "it's <b>urgent</b> & fast".into();
    let r = build(NOW - DAY, NOW, &[req], &[g], &[]);
    let page = render_html(&r);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{page}"
    );
    assert!(
        page.contains("it&#39;s &lt;b&gt;urgent&lt;/b&gt; &amp; fast"),
        "{page}"
    );
    // Self-contained: nothing is fetched.
    for outside in ["http://", "https://", "src=\"", "href="] {
        assert!(!page.contains(outside), "`{outside}` in {page}");
    }
    assert!(page.contains("default-src 'none'"));
}

/// Runs `brevet ARGS` with an empty config directory and no server.
fn run_local(args: &[&str]) -> Result<String, Error> {
    use clap::Parser;
    let tmp = tempfile::tempdir().unwrap();
    let cli =
        crate::Cli::try_parse_from(std::iter::once("brevet").chain(args.iter().copied())).unwrap();
    let env = crate::Env {
        config_dir: Some(tmp.path().to_owned()),
        now: NOW,
        stdin_is_terminal: false,
    };
    let mut out = Vec::new();
    crate::run(cli, &env, &mut &b""[..], &mut out).map(|()| String::from_utf8(out).unwrap())
}

#[test]
fn a_bad_since_is_refused_before_any_server_is_needed() {
    let err = run_local(&["report", "--since", "yesterday"]).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid since `yesterday`"),
        "{err}"
    );
    let err = run_local(&["report", "--since", "2026-12-01T00:00:00Z"]).unwrap_err();
    assert!(err.to_string().contains("in the future"), "{err}");
    let err = run_local(&["report", "--since", "2026-11-01T00:00:00Z", "--json"]);
    assert!(matches!(err, Err(Error::NoServer)), "{err:?}");
}

#[test]
fn escape_handles_every_special_character() {
    assert_eq!(
        escape(r#"<a href="x">&'"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    assert_eq!(escape("a\u{1b}[2Jb"), "a\u{fffd}[2Jb");
}

#[test]
fn html_is_written_atomically_and_replaces_an_old_report() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("report.html");
    std::fs::write(&path, "old").unwrap();
    write_atomically(&path, b"<!DOCTYPE html>new").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "<!DOCTYPE html>new"
    );
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.html"], "no temporary file left behind");
    let missing = tmp.path().join("no-such-dir").join("r.html");
    let err = write_atomically(&missing, b"x").unwrap_err().to_string();
    assert!(err.starts_with("cannot create `"), "{err}");
}
