//! The run loop driven through its channels, with the fake clock and system of the enforcement
//! tests: what the agent does when the server says the device was enrolled again elsewhere, or
//! that it waits for a restore to be acknowledged.

use std::sync::mpsc;

use brevet_proto::agent::AckAction;

use super::*;
use crate::enforce::tests::{Env, FILE, ID, TestAgent, deliver, doc};
use crate::verify::tests::T0;

fn args(env: &Env) -> RunArgs {
    RunArgs {
        state_dir: env.state.clone(),
        root: None,
        mode: Mode::Audit,
        kill_processes: true,
        allow_users: vec![],
        allow_sudoers: vec![],
        breakglass_user: None,
        reconcile_secs: 30,
        watch: vec![],
        allow_system_users: vec![],
    }
}

/// Runs the loop over `events` until they are used up (the channel closes and the loop ends).
fn drive(agent: &mut TestAgent, env: &Env, events: Vec<Event>) {
    let (tx, inbox) = mpsc::channel();
    let (outbox, _sent) = mpsc::channel();
    for e in events {
        tx.send(e).unwrap();
    }
    drop(tx);
    let end = main_loop(agent, &args(env), inbox, outbox);
    assert!(
        matches!(&end, Err(Error::State(m)) if m.contains("threads stopped")),
        "{end:?}"
    );
}

fn doc_b() -> brevet_proto::grant::GrantDoc {
    let mut d = doc();
    d.grant_id = "2b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into();
    d.user = "bob".into();
    d
}

fn actions(agent: &TestAgent) -> Vec<(String, AckAction, Option<String>)> {
    agent
        .pending_acks()
        .iter()
        .map(|a| (a.grant_id[..8].to_owned(), a.action, a.reason.clone()))
        .collect()
}

#[test]
fn a_superseded_agent_removes_everything_at_once_and_applies_nothing_again() {
    let env = Env::new();
    let mut a = env.agent_at(T0);
    a.set_enrollment("first").unwrap();
    drive(
        &mut a,
        &env,
        vec![
            Event::Grants(deliver(&env, &doc(), T0)),
            Event::Superseded("device `web-01` was enrolled again".into()),
            // The server, by mistake, answers this identity again with a new grant.
            Event::Grants(deliver(&env, &doc_b(), T0)),
        ],
    );
    assert!(env.sudoers_d().is_empty(), "{:?}", env.sudoers_d());
    let s = |r: &str| Some(r.to_owned());
    assert_eq!(
        actions(&a),
        [
            ("0b7f5b1e".into(), AckAction::Applied, None),
            (
                "0b7f5b1e".into(),
                AckAction::Removed,
                s("device superseded")
            ),
            ("2b7f5b1e".into(), AckAction::Rejected, s("superseded")),
        ]
    );
    assert!(a.superseded_mark().is_some());

    // A restart with the same enrollment still applies nothing.
    drop(a);
    let mut b = env.agent_at(T0 + 10);
    b.set_enrollment("first").unwrap();
    b.startup().unwrap();
    let acks = b.sync(&deliver(&env, &doc_b(), T0 + 10)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("superseded"));
    assert!(env.sudoers_d().is_empty());

    // Enrolled again: the mark goes, grants apply.
    drop(b);
    let mut c = env.agent_at(T0 + 20);
    c.set_enrollment("second").unwrap();
    assert!(c.superseded_mark().is_none());
    let acks = c.sync(&deliver(&env, &doc_b(), T0 + 20)).unwrap();
    assert_eq!(acks[0].action, AckAction::Applied, "{acks:?}");
}

#[test]
fn while_a_restore_is_pending_grants_held_run_on() {
    let env = Env::new();
    let mut a = env.agent_at(T0);
    drive(
        &mut a,
        &env,
        vec![
            Event::Grants(deliver(&env, &doc(), T0)),
            Event::RestorePending("the server waits for an administrator".into()),
            Event::RestorePending("the server waits for an administrator".into()),
        ],
    );
    assert_eq!(env.sudoers_d(), [FILE]);
    assert!(a.journal().active.contains_key(ID));
    assert_eq!(a.pending_acks().len(), 1, "only the applied ack");
}

#[test]
fn poll_failures_are_told_apart() {
    let api = |status: u16, code: &str| Error::Api {
        status,
        code: code.into(),
        message: format!("said {code}"),
    };
    let b = Duration::from_millis(500);
    let (e, pause) = poll_failure(&api(401, DEVICE_SUPERSEDED), b);
    assert!(matches!(e, Event::Superseded(m) if m == "said device_superseded"));
    assert_eq!(pause, SUPERSEDED_RETRY);
    let (e, pause) = poll_failure(&api(503, RESTORE_PENDING), b);
    assert!(matches!(e, Event::RestorePending(_)));
    assert_eq!(pause, RESTORE_PENDING_RETRY);
    let (e, pause) = poll_failure(&api(403, DEVICE_DISABLED), b);
    assert!(matches!(e, Event::Disabled(_)));
    assert_eq!(pause, b);
    // Any other refusal, or no answer at all, is being offline: grants run to their own end.
    for other in [
        api(401, "unauthorized"),
        api(503, "unavailable"),
        Error::Server {
            server: "https://x".into(),
            detail: "connection refused".into(),
        },
    ] {
        assert!(matches!(poll_failure(&other, b).0, Event::Offline(_)));
    }
}
