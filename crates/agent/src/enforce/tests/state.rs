//! Restore safety: the agent keeps the newest server-state stamp it has seen (in its journal,
//! before acting on the answer) and refuses answers whose stamp is older, forged, for another
//! device, or missing once one was seen. A refused answer applies nothing new; grants held run
//! to their own end.

use brevet_proto::state::{ServerState, SignedState};

use super::*;

const B: &str = "2b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

fn stamp(key: &Ed25519KeyPair, device: &str, generation: u64, audit_seq: u64) -> SignedState {
    ServerState {
        v: 1,
        device: device.into(),
        generation,
        audit_seq,
        issued_at: rfc3339(T0),
    }
    .sign(key)
    .unwrap()
}

fn doc_b() -> GrantDoc {
    let mut d = doc();
    d.grant_id = B.into();
    d.request_id = "3b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into();
    d.user = "bob".into();
    d
}

/// An answer listing `docs`, stamped with `state`.
fn answer(env: &Env, docs: &[GrantDoc], state: Option<SignedState>, at: i64) -> DeviceGrants {
    let mut d = delivery(
        docs.iter()
            .map(|d| (d.grant_id.clone(), sign_raw(d, &env.key)))
            .collect(),
        at,
    );
    d.state = state;
    d
}

/// Grant A (alice) applied under stamp (generation 1, audit seq 57).
fn seen_57(env: &Env) -> TestAgent {
    let mut a = env.agent_at(T0);
    let acks = a
        .sync(&answer(
            env,
            &[doc()],
            Some(stamp(&env.key, "web-01", 1, 57)),
            T0,
        ))
        .unwrap();
    assert_eq!(acks[0].action, AckAction::Applied, "{acks:?}");
    a
}

fn drop_in_b(env: &Env) -> PathBuf {
    env.root
        .sudoers_d()
        .join("brevet_2b7f5b1e8a4e4c419d1e2f7c8a9b0c1d")
}

/// Delivers A and B under `state`; asserts B is refused with a message containing `words`, A
/// kept, and nothing new written.
fn refused(env: &Env, a: &mut TestAgent, state: Option<SignedState>, words: &str) {
    let acks = a.sync(&answer(env, &[doc(), doc_b()], state, T0)).unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].grant_id, B);
    assert_eq!(acks[0].action, AckAction::Rejected);
    assert_eq!(acks[0].reason.as_deref(), Some("server_state"), "{acks:?}");
    let message = acks[0].detail["message"].as_str().unwrap();
    assert!(message.contains(words), "{message}");
    assert!(!drop_in_b(env).exists(), "a refused answer applied a grant");
    assert!(env.drop_in().exists(), "a held grant runs to its own end");
    assert!(!a.journal().active.contains_key(B));
}

#[test]
fn an_answer_with_an_older_stamp_applies_nothing_new() {
    let env = Env::new();
    let mut a = seen_57(&env);
    refused(
        &env,
        &mut a,
        Some(stamp(&env.key, "web-01", 1, 40)),
        "server state is older than one already seen (generation 1, audit seq 40 < generation \
         1, audit seq 57): the server may run on a restored backup",
    );
    // Acked once, not on every poll.
    let again = answer(
        &env,
        &[doc(), doc_b()],
        Some(stamp(&env.key, "web-01", 1, 40)),
        T0,
    );
    assert!(a.sync(&again).unwrap().is_empty());
    // The held grant ends on its own time.
    a.clock().set(NA);
    assert_eq!(a.tick().unwrap()[0].reason.as_deref(), Some("expired"));
}

#[test]
fn an_answer_without_a_stamp_once_one_was_seen_is_refused() {
    let env = Env::new();
    let mut a = seen_57(&env);
    refused(&env, &mut a, None, "no server state");
}

#[test]
fn a_forged_stamp_or_one_for_another_device_is_refused() {
    let env = Env::new();
    let mut a = seen_57(&env);
    refused(
        &env,
        &mut a,
        Some(stamp(&key(), "web-01", 1, 99)),
        "does not verify",
    );
    let env = Env::new();
    let mut a = seen_57(&env);
    refused(&env, &mut a, Some(stamp(&env.key, "db-01", 1, 99)), "db-01");
    // Even as the very first stamp.
    let env = Env::new();
    let mut a = env.agent_at(T0);
    let acks = a
        .sync(&answer(
            &env,
            &[doc()],
            Some(stamp(&key(), "web-01", 1, 1)),
            T0,
        ))
        .unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("server_state"));
    assert!(env.sudoers_d().is_empty());
}

#[test]
fn a_newer_generation_is_accepted_whatever_its_sequence_number() {
    let env = Env::new();
    let mut a = seen_57(&env);
    // An acknowledged restore: generation 2 starts again from a lower audit sequence.
    let acks = a
        .sync(&answer(
            &env,
            &[doc(), doc_b()],
            Some(stamp(&env.key, "web-01", 2, 3)),
            T0,
        ))
        .unwrap();
    assert_eq!(
        (acks[0].grant_id.as_str(), acks[0].action),
        (B, AckAction::Applied)
    );
    assert!(drop_in_b(&env).exists());
    // Generation 1 is now older, whatever its sequence number.
    let mut c = doc_b();
    c.grant_id = "4b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into();
    let acks = a
        .sync(&answer(
            &env,
            &[doc(), doc_b(), c],
            Some(stamp(&env.key, "web-01", 1, 1000)),
            T0,
        ))
        .unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("server_state"), "{acks:?}");
    // An equal stamp is accepted.
    let acks = a
        .sync(&answer(
            &env,
            &[doc(), doc_b()],
            Some(stamp(&env.key, "web-01", 2, 3)),
            T0,
        ))
        .unwrap();
    assert!(acks.is_empty(), "{acks:?}");
}

#[test]
fn the_newest_stamp_survives_a_restart() {
    let env = Env::new();
    drop(seen_57(&env));
    let mut b = env.agent_at(T0 + 5);
    b.startup().unwrap();
    refused(
        &env,
        &mut b,
        Some(stamp(&env.key, "web-01", 1, 56)),
        "audit seq 56 < generation 1, audit seq 57",
    );
}

#[test]
fn a_refused_answer_still_removes_what_it_no_longer_lists() {
    let env = Env::new();
    let mut a = seen_57(&env);
    let acks = a
        .sync(&answer(
            &env,
            &[],
            Some(stamp(&env.key, "web-01", 1, 40)),
            T0,
        ))
        .unwrap();
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("revoked"))
    );
    assert!(!env.drop_in().exists());
}

/// A System that, when a drop-in is checked, asserts the journal already holds the stamp.
struct StampFirst {
    inner: FakeSystem,
    journal: PathBuf,
}

impl System for StampFirst {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        let j = std::fs::read_to_string(&self.journal).unwrap_or_default();
        assert!(
            j.contains("\"audit_seq\": 57"),
            "a grant was acted on before the stamp of its answer was saved"
        );
        self.inner.check_sudoers(file)
    }
    fn supports_time_bounds(&self) -> bool {
        false
    }
    fn sudo_processes(&self, u: &str, uid: Option<u32>, since: i64) -> Vec<u32> {
        self.inner.sudo_processes(u, uid, since)
    }
    fn terminate(&self, pids: &[u32]) -> Vec<u32> {
        self.inner.terminate(pids)
    }
    fn group_add(&self, u: &str, g: &str) -> Result<()> {
        self.inner.group_add(u, g)
    }
    fn group_remove(&self, u: &str, g: &str) -> Result<()> {
        self.inner.group_remove(u, g)
    }
    fn uid(&self, u: &str) -> Result<Option<u32>> {
        self.inner.uid(u)
    }
}

#[test]
fn the_stamp_is_saved_before_the_answer_is_acted_on() {
    let env = Env::new();
    let sys = StampFirst {
        inner: FakeSystem::new(),
        journal: env.state.join(crate::journal::FILE),
    };
    let verifier = Verifier::new("web-01", env.key.public_key().as_ref().to_vec());
    let mut a = Agent::new(
        env.root.clone(),
        &env.state,
        FakeClock::at(T0),
        sys,
        verifier,
    )
    .unwrap();
    let acks = a
        .sync(&answer(
            &env,
            &[doc()],
            Some(stamp(&env.key, "web-01", 1, 57)),
            T0,
        ))
        .unwrap();
    assert_eq!(acks[0].action, AckAction::Applied);
}
