//! Table tests of decisions, under the default policy and custom ones.

mod common;

use brevet_policy::{Action, DEFAULT_POLICY, Engine, PrincipalKind};
use common::Case;

#[derive(Clone, Copy)]
struct Want {
    allowed: bool,
    policies: &'static [&'static str],
    explain: &'static str,
}

fn run(policy: &str, cases: Vec<(&str, Case, Want)>) {
    let engine = Engine::new(policy).expect("policy is valid");
    for (name, case, want) in cases {
        let got = engine.decide(&case.query());
        assert_eq!(got.allowed, want.allowed, "{name}: {got:?}");
        assert_eq!(got.policies, want.policies, "{name}: {got:?}");
        assert_eq!(got.explain(), want.explain, "{name}: {got:?}");
        assert!(got.errors.is_empty(), "{name}: {got:?}");
    }
}

#[test]
fn default_policy() {
    let allowed = |id: &'static [&'static str], explain| Want {
        allowed: true,
        policies: id,
        explain,
    };
    let nothing = Want {
        allowed: false,
        policies: &[],
        explain: "denied: no policy permits this",
    };
    let mut workload = Case::new("ci", &["operators"], Action::Request);
    workload.kind = PrincipalKind::Workload;
    run(
        DEFAULT_POLICY,
        vec![
            (
                "operator requests",
                Case::new("alice", &["staff", "operators"], Action::Request),
                allowed(
                    &["operators-may-request"],
                    "allowed by policy `operators-may-request`",
                ),
            ),
            (
                "operator workload requests",
                workload,
                allowed(
                    &["operators-may-request"],
                    "allowed by policy `operators-may-request`",
                ),
            ),
            (
                "non-operator requests",
                Case::new("bob", &["staff", "approvers"], Action::Request),
                nothing,
            ),
            ("no groups", Case::new("eve", &[], Action::Request), nothing),
            (
                "approver approves",
                Case::new("carol", &["approvers"], Action::Approve),
                allowed(
                    &["approvers-may-approve"],
                    "allowed by policy `approvers-may-approve`",
                ),
            ),
            (
                "operator cannot approve",
                Case::new("alice", &["operators"], Action::Approve),
                nothing,
            ),
            (
                "breakglass member breaks glass",
                Case::new("dan", &["breakglass"], Action::Breakglass),
                allowed(
                    &["breakglass-may-breakglass"],
                    "allowed by policy `breakglass-may-breakglass`",
                ),
            ),
            (
                "operator cannot break glass",
                Case::new("alice", &["operators"], Action::Breakglass),
                nothing,
            ),
            (
                "nothing is auto-approved",
                Case::new(
                    "root",
                    &["operators", "approvers", "breakglass"],
                    Action::AutoApprove,
                ),
                nothing,
            ),
            (
                "group named like the user",
                Case::new("operators", &[], Action::Request),
                nothing,
            ),
        ],
    );
}

const CUSTOM: &str = r#"
@id("operators-may-request")
permit (principal in Group::"operators", action == Action::"request", resource);

@id("forbid-prod")
forbid (principal, action in Action::"elevation", resource)
when { resource.hasTag("env") && resource.getTag("env") == "prod" };

@id("forbid-long")
forbid (principal, action == Action::"request", resource)
when { context.duration_seconds > 3600 };

@id("auto-approve-short-pkg-update")
permit (principal in Group::"operators", action == Action::"auto_approve", resource in DeviceGroup::"web")
when { context.role == Role::"pkg-update" && context.duration_seconds <= 600 && principal.kind == "human" };
"#;

#[test]
fn custom_forbids() {
    let denied = |policies: &'static [&'static str], explain| Want {
        allowed: false,
        policies,
        explain,
    };
    let mut pkg = Case::new("alice", &["operators"], Action::AutoApprove).duration(300);
    pkg.role = "pkg-update".to_string();
    let mut pkg_other_group = pkg.clone();
    pkg_other_group.device_groups = vec!["db".to_string()];
    run(
        CUSTOM,
        vec![
            (
                "test device, short",
                Case::new("alice", &["operators"], Action::Request),
                Want {
                    allowed: true,
                    policies: &["operators-may-request"],
                    explain: "allowed by policy `operators-may-request`",
                },
            ),
            (
                "prod device",
                Case::new("alice", &["operators"], Action::Request).tag("env", "prod"),
                denied(&["forbid-prod"], "denied by policy `forbid-prod`"),
            ),
            (
                "too long",
                Case::new("alice", &["operators"], Action::Request).duration(3601),
                denied(&["forbid-long"], "denied by policy `forbid-long`"),
            ),
            (
                "exactly an hour is fine",
                Case::new("alice", &["operators"], Action::Request).duration(3600),
                Want {
                    allowed: true,
                    policies: &["operators-may-request"],
                    explain: "allowed by policy `operators-may-request`",
                },
            ),
            (
                "prod and too long",
                Case::new("alice", &["operators"], Action::Request)
                    .tag("env", "prod")
                    .duration(7200),
                denied(
                    &["forbid-long", "forbid-prod"],
                    "denied by policies `forbid-long`, `forbid-prod`",
                ),
            ),
            (
                "forbid applies to non-operators too",
                Case::new("bob", &[], Action::Request).tag("env", "prod"),
                denied(&["forbid-prod"], "denied by policy `forbid-prod`"),
            ),
            (
                "auto-approve short pkg-update on web",
                pkg,
                Want {
                    allowed: true,
                    policies: &["auto-approve-short-pkg-update"],
                    explain: "allowed by policy `auto-approve-short-pkg-update`",
                },
            ),
            (
                "auto-approve needs the device group",
                pkg_other_group,
                denied(&[], "denied: no policy permits this"),
            ),
        ],
    );
}

#[test]
fn every_context_field_reaches_the_policy() {
    // One forbid per field; a case that trips exactly one of them.
    let policy = r#"
        @id("allow") permit (principal, action in Action::"elevation", resource);
        @id("os") forbid (principal, action in Action::"elevation", resource) when { resource.os == "windows" };
        @id("device-group") forbid (principal, action in Action::"elevation", resource) when { resource in DeviceGroup::"frozen" };
        @id("role") forbid (principal, action in Action::"elevation", resource) when { context.role == Role::"root" };
        @id("mfa") forbid (principal, action in Action::"elevation", resource) when { context.mfa_age_seconds > 900 };
        @id("night") forbid (principal, action in Action::"elevation", resource) when { context.hour_utc < 6 };
        @id("weekend") forbid (principal, action in Action::"elevation", resource) when { context.weekday == "sun" };
        @id("workload") forbid (principal, action in Action::"elevation", resource) when { context.kind == "workload" };
        @id("ticket") forbid (principal, action in Action::"elevation", resource)
          when { context.ticket.present && !(context.ticket.valid && context.ticket.state == "open"
                 && context.ticket.id like "CHG-*" && context.ticket.assignee_matches
                 && context.ticket.device_listed && context.ticket.window_ok) };
    "#;
    let engine = Engine::new(policy).expect("valid");
    let base = || {
        let mut c = Case::new("alice", &[], Action::Request);
        c.context.mfa_age_seconds = 60;
        c
    };
    let good_ticket = brevet_policy::Ticket {
        present: true,
        id: "CHG-1".into(),
        valid: true,
        state: "open".into(),
        assignee_matches: true,
        device_listed: true,
        window_ok: true,
    };
    let mut cases: Vec<(&str, Case)> = Vec::new();
    cases.push(("", base()));
    let mut c = base();
    c.context.ticket = good_ticket.clone();
    cases.push(("", c));
    let mut c = base();
    c.device_os = "windows".into();
    cases.push(("os", c));
    let mut c = base();
    c.device_groups.push("frozen".into());
    cases.push(("device-group", c));
    let mut c = base();
    c.role = "root".into();
    cases.push(("role", c));
    let mut c = base();
    c.context.mfa_age_seconds = brevet_policy::NO_MFA;
    cases.push(("mfa", c));
    let mut c = base();
    c.context.hour_utc = 3;
    cases.push(("night", c));
    let mut c = base();
    c.context.weekday = "sun".into();
    cases.push(("weekend", c));
    let mut c = base();
    c.kind = PrincipalKind::Workload;
    cases.push(("workload", c));
    for broken in 0..6 {
        let mut t = good_ticket.clone();
        match broken {
            0 => t.valid = false,
            1 => t.state = "closed".into(),
            2 => t.id = "INC-1".into(),
            3 => t.assignee_matches = false,
            4 => t.device_listed = false,
            _ => t.window_ok = false,
        }
        let mut c = base();
        c.context.ticket = t;
        cases.push(("ticket", c));
    }
    for (want, case) in cases {
        let got = engine.decide(&case.query());
        if want.is_empty() {
            assert!(got.allowed, "{case:?}: {got:?}");
            assert_eq!(got.policies, ["allow"], "{case:?}");
        } else {
            assert!(!got.allowed, "{want}: {got:?}");
            assert_eq!(got.policies, [want], "{case:?}");
        }
    }
}

#[test]
fn engine_is_send_sync_and_shared() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();

    let engine = std::sync::Arc::new(Engine::new(DEFAULT_POLICY).expect("valid"));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let case = Case::new("alice", &["operators"], Action::Request);
                engine.decide(&case.query()).allowed
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().expect("thread"));
    }
}

/// Who holds which permission on the installation under the default policy.
#[test]
fn default_policy_permissions() {
    use brevet_policy::{Permission, PermissionQuery, ServiceContext};
    let engine = Engine::new(DEFAULT_POLICY).expect("valid");
    let context = ServiceContext::default();
    let holds = |groups: &[&str], p: Permission| {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let q = PermissionQuery {
            user: "someone",
            groups: &groups,
            kind: PrincipalKind::Human,
            permission: p,
            context: &context,
        };
        let d = engine.permits(&q);
        assert!(d.errors.is_empty(), "{d:?}");
        d.allowed
    };
    for p in Permission::ALL {
        let own = p == Permission::ReadOwn;
        assert_eq!(holds(&[], p), own, "no group, {p:?}");
        assert_eq!(holds(&["operators"], p), own, "operator, {p:?}");
        assert_eq!(
            holds(&["approvers", "breakglass"], p),
            own,
            "approver, {p:?}"
        );
        assert!(holds(&["admins"], p), "admin, {p:?}");
        assert_eq!(
            holds(&["auditors"], p),
            !p.is_administration(),
            "auditor, {p:?}"
        );
    }
}

/// `action in Action::"elevation"` (a group) works, also when the rest of the policy names no
/// group; a policy without groups decides the same with or without the action's entity.
#[test]
fn action_groups_are_honoured() {
    let grouped =
        Engine::new(r#"@id("p") permit (principal, action in Action::"elevation", resource);"#)
            .expect("valid");
    let listed = Engine::new(
        r#"@id("p") permit (principal, action in [Action::"request", Action::"approve"], resource);"#,
    )
    .expect("valid");
    for action in [Action::Request, Action::Approve] {
        let case = Case::new("alice", &[], action);
        assert!(grouped.decide(&case.query()).allowed, "{action:?}");
        assert!(listed.decide(&case.query()).allowed, "{action:?}");
    }
    let case = Case::new("alice", &[], Action::Breakglass);
    assert!(grouped.decide(&case.query()).allowed);
    assert!(!listed.decide(&case.query()).allowed);
}
