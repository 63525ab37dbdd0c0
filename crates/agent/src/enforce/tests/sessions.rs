//! Processes a user started through sudo end when the last of their overlapping grants ends —
//! all of them, including those started under an earlier grant of the run.

use super::*;

const B: &str = "2b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

/// A second grant for alice: in force from T0 + 10 min to T0 + 2 h.
fn later_doc() -> GrantDoc {
    let mut d = doc();
    d.grant_id = B.into();
    d.request_id = "3b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into();
    d.not_before = rfc3339(T0 + 600);
    d.not_after = rfc3339(T0 + 7200);
    d.issued_at = rfc3339(T0 + 600);
    d
}

#[test]
fn a_root_shell_from_an_earlier_grant_ends_with_the_last_overlapping_grant() {
    let env = Env::new();
    env.sys.state().processes = vec![
        ("alice".into(), 41, T0 - 100), // before any grant: not Brevet's
        ("alice".into(), 42, T0 + 300), // a root shell opened under grant A
        ("alice".into(), 43, T0 + 900), // opened under B
        ("bob".into(), 44, T0 + 300),   // someone else's
    ];
    let mut a = applied(&env); // grant A, T0 .. T0 + 30 min
    a.clock().set(T0 + 600);
    let both = delivery(
        vec![
            (ID.into(), sign_raw(&doc(), &env.key)),
            (B.into(), sign_raw(&later_doc(), &env.key)),
        ],
        T0 + 600,
    );
    let acks = a.sync(&both).unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].grant_id.as_str(), acks[0].action),
        (B, AckAction::Applied)
    );

    // A ends while B is in force: the processes stay (B still allows the same user root).
    a.clock().set(NA);
    let acks = a.tick().unwrap();
    assert_eq!(acks[0].grant_id, ID);
    assert_eq!(acks[0].detail["processes_kept"], true);
    assert_eq!(acks[0].detail["processes_ended"], serde_json::json!([]));
    assert!(!env.sys.calls().iter().any(|c| c.starts_with("terminate")));

    // The agent restarts in between: the start of alice's run is in the journal.
    drop(a);
    let mut a = env.agent_at(NA + 60);
    a.startup().unwrap();

    // B ends: everything alice started through sudo since A began ends, the shell included.
    a.clock().set(T0 + 7200);
    let acks = a.tick().unwrap();
    assert_eq!(acks[0].grant_id, B);
    assert_eq!(
        acks[0].detail["processes_ended"],
        serde_json::json!([42, 43])
    );
    assert_eq!(acks[0].detail["processes_kept"], false);
    let left: Vec<u32> = env.sys.state().processes.iter().map(|p| p.1).collect();
    assert_eq!(left, [41, 44]);
    assert!(a.journal().sessions.is_empty(), "the run is over");
}

#[test]
fn a_new_run_starts_after_the_last_grant_ended() {
    let env = Env::new();
    let mut a = applied(&env);
    a.clock().set(NA);
    a.tick().unwrap();
    // Between grants alice has no sudo; a later grant starts a run of its own.
    env.sys.state().processes = vec![
        ("alice".into(), 50, T0 + 1850),
        ("alice".into(), 51, T0 + 2000),
    ];
    let mut late = later_doc();
    late.not_before = rfc3339(T0 + 1900);
    late.issued_at = rfc3339(T0 + 1900);
    a.clock().set(T0 + 1900);
    let acks = a.sync(&deliver(&env, &late, T0 + 1900)).unwrap();
    assert_eq!(acks[0].action, AckAction::Applied);
    assert_eq!(a.journal().sessions["alice"], T0 + 1900);
    a.clock().set(T0 + 7200);
    let acks = a.tick().unwrap();
    assert_eq!(acks[0].detail["processes_ended"], serde_json::json!([51]));
}
