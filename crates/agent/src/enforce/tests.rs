//! The enforcement core with a fake clock, a fake system, and temp dirs as Root and state dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brevet_proto::agent::{AckAction, DeliveredGrant, DeviceGrants};
use brevet_proto::api::GrantState;
use brevet_proto::grant::GrantDoc;
use brevet_proto::timefmt::rfc3339;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;
use crate::clock::FakeClock;
use crate::reconcile::reconcile;
use crate::system::FakeSystem;
use crate::verify::tests::{T0, key, sign_raw};

mod accounts;
mod impostors;
mod planted;
mod replay;
mod sessions;
mod state;

pub(crate) const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
pub(crate) const FILE: &str = "brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d";
/// The sample grant's `not_after`.
pub(crate) const NA: i64 = T0 + 1800;

pub(crate) type TestAgent = Agent<FakeClock, Arc<FakeSystem>>;

pub(crate) struct Env {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) root: Root,
    pub(crate) state: PathBuf,
    pub(crate) key: Ed25519KeyPair,
    pub(crate) sys: Arc<FakeSystem>,
}

impl Env {
    pub(crate) fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("root"));
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        let state = tmp.path().join("state");
        Env {
            _tmp: tmp,
            root,
            state,
            key: key(),
            sys: Arc::new(FakeSystem::new().with_time_bounds()),
        }
    }

    pub(crate) fn agent_at(&self, now: i64) -> TestAgent {
        let verifier = Verifier::new("web-01", self.key.public_key().as_ref().to_vec());
        Agent::new(
            self.root.clone(),
            &self.state,
            FakeClock::at(now),
            self.sys.clone(),
            verifier,
        )
        .unwrap()
        .with_kill_processes(true)
    }

    pub(crate) fn drop_in(&self) -> PathBuf {
        self.root.sudoers_d().join(FILE)
    }

    /// Everything in ROOT/etc/sudoers.d (empty when absent).
    pub(crate) fn sudoers_d(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.sudoers_d())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

pub(crate) fn doc() -> GrantDoc {
    crate::sudoers::render_tests_doc()
}

pub(crate) fn delivery(
    grants: Vec<(String, brevet_proto::grant::SignedGrant)>,
    server_time: i64,
) -> DeviceGrants {
    DeviceGrants {
        cursor: "c1".into(),
        server_time: rfc3339(server_time),
        grants: grants
            .into_iter()
            .map(|(id, signed)| DeliveredGrant {
                id,
                state: GrantState::Issued,
                signed,
            })
            .collect(),
        state: None,
    }
}

pub(crate) fn deliver(env: &Env, d: &GrantDoc, now: i64) -> DeviceGrants {
    delivery(vec![(d.grant_id.clone(), sign_raw(d, &env.key))], now)
}

pub(crate) fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Applies the sample grant at T0 and returns the agent.
pub(crate) fn applied(env: &Env) -> TestAgent {
    let mut a = env.agent_at(T0);
    let acks = a.sync(&deliver(env, &doc(), T0)).unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].action, AckAction::Applied, "{acks:?}");
    a
}

#[test]
fn apply_writes_the_drop_in_with_mode_0440_and_the_rendered_content() {
    let env = Env::new();
    let a = applied(&env);
    assert_eq!(env.sudoers_d(), [FILE]);
    assert_eq!(mode(&env.drop_in()), 0o440);
    let text = std::fs::read_to_string(env.drop_in()).unwrap();
    assert_eq!(text, crate::sudoers::render(&doc(), true).unwrap());
    assert!(text.contains(
        "NOTBEFORE=20261128100000Z NOTAFTER=20261128103000Z NOPASSWD: /usr/bin/apt-get update"
    ));
    let ack = &a.pending_acks()[0];
    assert_eq!(ack.grant_id, ID);
    assert_eq!(ack.detail["drop_in"], format!("/etc/sudoers.d/{FILE}"));
    assert_eq!(ack.detail["time_bounds"], true);
    assert_eq!(ack.at, rfc3339(T0));
    // The ack is in the saved journal too, and the entry is in force.
    let j = Journal::load(&env.state).unwrap();
    assert_eq!(j.pending_acks, a.pending_acks());
    assert_eq!(j.active[ID].applied_at, Some(T0));
    assert_eq!(a.next_deadline(), Some(NA));
}

#[test]
fn without_time_bounds_the_drop_in_has_none() {
    let env = Env::new();
    env.sys.state().time_bounds = false;
    let _a = applied(&env);
    let text = std::fs::read_to_string(env.drop_in()).unwrap();
    assert!(
        !text.contains("NOTBEFORE") && text.contains("alice ALL=(root) NOPASSWD: "),
        "{text}"
    );
}

/// A System that checks, at the moment the drop-in is checked, that the journal already holds it.
struct JournalFirst {
    inner: FakeSystem,
    journal: PathBuf,
}

impl System for JournalFirst {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        let j = std::fs::read_to_string(&self.journal).unwrap_or_default();
        assert!(
            j.contains(ID),
            "the drop-in was written before the journal recorded the grant"
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
fn the_journal_records_a_grant_before_its_drop_in_exists() {
    let env = Env::new();
    let sys = JournalFirst {
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
    let acks = a.sync(&deliver(&env, &doc(), T0)).unwrap();
    assert_eq!(acks[0].action, AckAction::Applied);
    assert_eq!(a.system().inner.calls().len(), 1, "the check ran");
}

#[test]
fn a_drop_in_visudo_rejects_is_never_installed_and_no_temp_file_remains() {
    let env = Env::new();
    env.sys.state().reject = Some("parse error in .brevet_x.tmp near line 3".into());
    let mut a = env.agent_at(T0);
    let acks = a.sync(&deliver(&env, &doc(), T0)).unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].action, AckAction::Rejected);
    assert_eq!(acks[0].reason.as_deref(), Some("sudoers"));
    assert!(
        acks[0].detail["message"]
            .as_str()
            .unwrap()
            .contains("parse error")
    );
    assert!(env.sudoers_d().is_empty(), "{:?}", env.sudoers_d());
    assert!(a.journal().active.is_empty());
    // Delivered again: refused (it ended here), but not acked a second time.
    env.sys.state().reject = None;
    assert!(a.sync(&deliver(&env, &doc(), T0)).unwrap().is_empty());
    assert!(env.sudoers_d().is_empty());
}

#[test]
fn expiry_removes_at_not_after_and_not_one_second_before() {
    let env = Env::new();
    let mut a = applied(&env);
    a.clock().set(NA - 1);
    assert!(a.tick().unwrap().is_empty());
    assert!(env.drop_in().exists());
    a.clock().set(NA);
    let acks = a.tick().unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("expired"))
    );
    assert_eq!(acks[0].detail["drop_in"], format!("/etc/sudoers.d/{FILE}"));
    assert_eq!(acks[0].at, rfc3339(NA));
    assert!(!env.drop_in().exists());
    assert_eq!(a.journal().ended.get(ID).map(|e| e.at), Some(NA));
    assert_eq!(a.next_deadline(), None);
    // The server, not yet aware, delivers it again: refused as a replay, nothing written.
    let again = a.sync(&deliver(&env, &doc(), NA - 1)).unwrap();
    assert_eq!(again[0].reason.as_deref(), Some("replay"));
    assert!(env.sudoers_d().is_empty());
}

#[test]
fn a_restarted_agent_removes_expired_grants_in_startup_before_anything_else() {
    let env = Env::new();
    drop(applied(&env));
    assert!(env.drop_in().exists());
    // Down across not_after; the server is unreachable (no sync ever happens).
    let mut b = env.agent_at(NA + 600);
    assert!(
        env.drop_in().exists(),
        "constructing the agent touches nothing"
    );
    let acks = b.startup().unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("expired"))
    );
    assert!(!env.drop_in().exists());
    assert!(b.journal().active.is_empty());
    // The applied ack of the first run is still queued ahead of the removal.
    let actions: Vec<AckAction> = b.pending_acks().iter().map(|a| a.action).collect();
    assert_eq!(actions, [AckAction::Applied, AckAction::Removed]);
    b.acks_delivered(1).unwrap();
    let left = Journal::load(&env.state).unwrap().pending_acks;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].action, AckAction::Removed);
}

#[test]
fn startup_removes_an_expired_grant_before_reconciling_so_it_is_never_restored() {
    let env = Env::new();
    drop(applied(&env));
    // Deleted while the agent was down across not_after: restoring it first would re-grant
    // sudo, however briefly.
    std::fs::remove_file(env.drop_in()).unwrap();
    let calls_before = env.sys.calls().len();
    let mut b = env.agent_at(NA + 600);
    let acks = b.startup().unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("expired"));
    assert_eq!(acks[0].detail["drop_in"], serde_json::Value::Null);
    let calls = env.sys.calls();
    assert!(
        !calls[calls_before..].iter().any(|c| c.starts_with("check")),
        "a drop-in was checked for installation: {calls:?}"
    );
    assert!(env.sudoers_d().is_empty());
}

#[test]
fn removal_deletes_sudo_timestamp_records() {
    let env = Env::new();
    std::fs::write(
        env.root.path("/etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    for p in [
        "/run/sudo/ts/alice",
        "/var/run/sudo-rs/ts/1000",
        "/run/sudo/ts/bob",
    ] {
        let p = env.root.path(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"ts").unwrap();
    }
    let mut a = applied(&env);
    let acks = a.remove(ID, "revoked").unwrap();
    assert!(!env.root.path("/run/sudo/ts/alice").exists());
    assert!(!env.root.path("/var/run/sudo-rs/ts/1000").exists());
    assert!(
        env.root.path("/run/sudo/ts/bob").exists(),
        "other users' records stay"
    );
    assert_eq!(
        acks[0].detail["timestamps_removed"],
        serde_json::json!(["/run/sudo/ts/alice", "/var/run/sudo-rs/ts/1000"])
    );
}

#[test]
fn a_grant_absent_from_the_next_sync_is_removed_as_revoked() {
    let env = Env::new();
    let mut a = applied(&env);
    a.clock().advance(60);
    let acks = a.sync(&delivery(vec![], T0 + 60)).unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("revoked"))
    );
    assert!(!env.drop_in().exists());
    // A delivered grant in a final state counts as absent too.
    let env = Env::new();
    let mut a = applied(&env);
    let mut d = deliver(&env, &doc(), T0);
    d.grants[0].state = GrantState::Revoked;
    assert_eq!(a.sync(&d).unwrap()[0].reason.as_deref(), Some("revoked"));
}

#[test]
fn removal_ends_the_users_sudo_processes_started_during_the_grant() {
    let env = Env::new();
    env.sys.state().processes = vec![
        ("alice".into(), 42, T0 + 10),
        ("alice".into(), 41, T0 - 100),
        ("bob".into(), 43, T0 + 10),
    ];
    let mut a = applied(&env);
    let acks = a.remove(ID, "revoked").unwrap();
    assert_eq!(acks[0].detail["processes_ended"], serde_json::json!([42]));
    assert!(env.sys.calls().contains(&"terminate 42".to_owned()));
    // Switched off (the sandbox default), nothing is scanned.
    let env = Env::new();
    env.sys.state().processes = vec![("alice".into(), 42, T0 + 10)];
    let mut a = applied(&env).with_kill_processes(false);
    a.remove(ID, "revoked").unwrap();
    assert!(
        !env.sys
            .calls()
            .iter()
            .any(|c| c.starts_with("terminate") || c.starts_with("sudo_processes"))
    );
}

#[test]
fn refused_grants_are_acked_with_their_reason_and_nothing_is_written() {
    let mut other_device = doc();
    other_device.device = "db-01".into();
    let mut hostile = doc();
    hostile.user = "bob ALL=(ALL) NOPASSWD: ALL".into();
    let mut hostile_cmd = doc();
    hostile_cmd.commands = vec!["/bin/ls\nbob ALL=(ALL) NOPASSWD: ALL".into()];
    let forger = key();
    let base = doc();
    // (reason, document, signed by the pinned key?, device time, server time)
    let cases: Vec<(&str, &GrantDoc, bool, i64, i64)> = vec![
        ("signature", &base, false, T0, T0),
        ("device", &other_device, true, T0, T0),
        ("expired", &base, true, NA, NA),
        ("skew", &base, true, T0, T0 + 200),
        ("skew", &base, true, T0, T0 - 200),
        ("invalid", &hostile, true, T0, T0),
        ("invalid", &hostile_cmd, true, T0, T0),
    ];
    for (want, d, pinned, now, server) in cases {
        let env = Env::new();
        let signed = sign_raw(d, if pinned { &env.key } else { &forger });
        let mut a = env.agent_at(now);
        let acks = a
            .sync(&delivery(vec![(ID.into(), signed)], server))
            .unwrap();
        assert_eq!(acks.len(), 1, "{want}: {acks:?}");
        assert_eq!(acks[0].action, AckAction::Rejected, "{want}");
        assert_eq!(acks[0].reason.as_deref(), Some(want), "{acks:?}");
        assert!(
            env.sudoers_d().is_empty(),
            "{want}: wrote {:?}",
            env.sudoers_d()
        );
        assert!(a.journal().active.is_empty(), "{want}");
        assert!(env.sys.calls().is_empty(), "{want}: {:?}", env.sys.calls());
    }
    let env = Env::new();
    // Replay: an id this device already ended.
    let mut a = env.agent_at(T0);
    a.journal.record_ended(ID, T0 - 5, NA, 120);
    let acks = a.sync(&deliver(&env, &doc(), T0)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("replay"));
    assert!(env.sudoers_d().is_empty());
    // A grant refused again on the next delivery is not acked twice.
    assert!(a.sync(&deliver(&env, &doc(), T0)).unwrap().is_empty());
}

#[test]
fn a_grant_delivered_under_another_id_is_refused() {
    let env = Env::new();
    let mut a = env.agent_at(T0);
    let other = "9b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".to_owned();
    let acks = a
        .sync(&delivery(vec![(other, sign_raw(&doc(), &env.key))], T0))
        .unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("invalid"));
    assert!(env.sudoers_d().is_empty());
}

#[test]
fn a_future_grant_is_recorded_and_applied_when_its_start_comes() {
    let env = Env::new();
    let mut a = env.agent_at(T0 - 600);
    assert!(a.sync(&deliver(&env, &doc(), T0 - 600)).unwrap().is_empty());
    assert!(env.sudoers_d().is_empty());
    assert_eq!(a.journal().active[ID].applied_at, None);
    assert_eq!(a.next_deadline(), Some(T0));
    a.clock().set(T0 - 1);
    assert!(a.tick().unwrap().is_empty());
    a.clock().set(T0);
    let acks = a.tick().unwrap();
    assert_eq!(acks[0].action, AckAction::Applied);
    assert!(env.drop_in().exists());
}

fn group_doc() -> GrantDoc {
    let mut d = doc();
    d.commands = vec![];
    d.groups = vec!["docker".into(), "adm".into()];
    d
}

#[test]
fn a_group_grant_writes_no_drop_in_and_takes_back_only_what_it_gave() {
    let env = Env::new();
    std::fs::write(
        env.root.path("/etc/group"),
        "adm:x:4:alice\ndocker:x:999:\n",
    )
    .unwrap();
    let mut a = env.agent_at(T0);
    let acks = a.sync(&deliver(&env, &group_doc(), T0)).unwrap();
    assert_eq!(acks[0].action, AckAction::Applied);
    assert_eq!(
        acks[0].detail["groups_added"],
        serde_json::json!(["docker"])
    );
    assert_eq!(
        acks[0].detail["groups_already_member"],
        serde_json::json!(["adm"])
    );
    assert!(
        acks[0].detail["warning"]
            .as_str()
            .unwrap()
            .contains("sessions")
    );
    assert_eq!(acks[0].detail["drop_in"], serde_json::Value::Null);
    assert!(env.sudoers_d().is_empty());
    assert!(
        env.sys
            .state()
            .members
            .contains(&("alice".into(), "docker".into()))
    );
    a.clock().set(NA);
    let acks = a.tick().unwrap();
    assert_eq!(
        acks[0].detail["groups_removed"],
        serde_json::json!(["docker"])
    );
    let calls = env.sys.calls();
    assert!(calls.contains(&"group_remove alice docker".to_owned()));
    assert!(
        !calls.contains(&"group_remove alice adm".to_owned()),
        "standing membership kept"
    );
}

#[test]
fn an_unfinished_removal_is_kept_retried_and_never_restored() {
    let env = Env::new();
    std::fs::write(env.root.path("/etc/group"), "docker:x:999:\n").unwrap();
    let mut d = doc();
    d.groups = vec!["docker".into()];
    let mut a = env.agent_at(T0);
    assert_eq!(
        a.sync(&deliver(&env, &d, T0)).unwrap()[0].action,
        AckAction::Applied
    );
    env.sys.state().failing_group = Some("docker".into());
    a.clock().set(NA);
    assert!(
        a.tick().unwrap().is_empty(),
        "no removal ack while the group is still granted"
    );
    assert!(!env.drop_in().exists(), "the drop-in is gone at once");
    assert_eq!(a.journal().active[ID].removing.as_deref(), Some("expired"));
    assert_eq!(a.next_deadline(), Some(i64::MIN));
    let report = reconcile(&mut a).unwrap();
    assert!(report.restored.is_empty() && !env.drop_in().exists());
    env.sys.state().failing_group = None;
    let acks = a.tick().unwrap();
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("expired"))
    );
    assert!(a.journal().active.is_empty());
}

#[test]
fn reconcile_restores_a_deleted_or_altered_drop_in_and_removes_orphans() {
    let env = Env::new();
    let mut a = applied(&env);
    let want = std::fs::read_to_string(env.drop_in()).unwrap();
    std::fs::remove_file(env.drop_in()).unwrap();
    let orphan = "brevet_ffffffffffffffffffffffffffffffff";
    std::fs::write(
        env.root.sudoers_d().join(orphan),
        "mallory ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    let temp = ".brevet_ffffffffffffffffffffffffffffffff.tmp";
    std::fs::write(env.root.sudoers_d().join(temp), "x").unwrap();
    let report = reconcile(&mut a).unwrap();
    assert_eq!(report.restored, [ID]);
    assert_eq!(report.removed_orphans, [orphan]);
    assert!(report.quarantined.is_empty());
    assert_eq!(env.sudoers_d(), [FILE]);
    assert_eq!(std::fs::read_to_string(env.drop_in()).unwrap(), want);
    assert_eq!(mode(&env.drop_in()), 0o440);
    assert_eq!(report.drift.len(), 2, "{:?}", report.drift);

    // Altered in place (content or mode) is restored too.
    std::fs::set_permissions(env.drop_in(), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(env.drop_in(), "alice ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    assert_eq!(reconcile(&mut a).unwrap().restored, [ID]);
    assert_eq!(std::fs::read_to_string(env.drop_in()).unwrap(), want);
    assert_eq!(mode(&env.drop_in()), 0o440);
    assert_eq!(
        reconcile(&mut a).unwrap(),
        crate::reconcile::Report::default()
    );
}

#[test]
fn drift_is_reported_once() {
    let env = Env::new();
    std::fs::write(env.root.path("/etc/sudoers"), "root ALL=(ALL:ALL) ALL\n").unwrap();
    std::fs::write(
        env.root.path("/etc/group"),
        "sudo:x:27:carol\ndocker:x:999:\n",
    )
    .unwrap();
    let mut a = env.agent_at(T0);
    assert!(a.startup().unwrap().is_empty());
    assert!(
        a.pending_drift().is_empty(),
        "the first run only takes the baseline"
    );

    // A docker grant for alice is not drift.
    let mut d = doc();
    d.groups = vec!["docker".into()];
    a.sync(&deliver(&env, &d, T0)).unwrap();
    std::fs::write(
        env.root.path("/etc/group"),
        "sudo:x:27:carol\ndocker:x:999:alice\n",
    )
    .unwrap();
    assert!(reconcile(&mut a).unwrap().drift.is_empty());

    std::fs::write(
        env.root.path("/etc/group"),
        "sudo:x:27:carol,bob\ndocker:x:999:alice\n",
    )
    .unwrap();
    std::fs::create_dir_all(env.root.sudoers_d()).unwrap();
    std::fs::write(
        env.root.sudoers_d().join("zz-local"),
        "bob ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    std::fs::write(
        env.root.path("/etc/sudoers"),
        "root ALL=(ALL:ALL) ALL\nbob ALL=(ALL) ALL\n",
    )
    .unwrap();
    let drift = reconcile(&mut a).unwrap().drift;
    let ids: Vec<&str> = drift.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "drift:file:/etc/sudoers",
            "drift:file:/etc/sudoers.d/zz-local",
            "drift:group:sudo:bob"
        ]
    );
    assert!(
        drift
            .iter()
            .all(|f| f.kind == "drift" && f.severity == brevet_proto::agent::Severity::High)
    );
    assert_eq!(a.pending_drift().len(), 3);
    assert!(reconcile(&mut a).unwrap().drift.is_empty(), "reported once");
    // The baseline survives a restart.
    let mut b = env.agent_at(T0 + 1);
    assert!(reconcile(&mut b).unwrap().drift.is_empty());
    assert_eq!(b.pending_drift().len(), 3);
    b.drift_delivered(3).unwrap();
    assert!(Journal::load(&env.state).unwrap().pending_drift.is_empty());
}

#[test]
fn the_record_of_use_follows_the_grant() {
    use brevet_proto::agent::{ChangeSummary, CommandUse, DeviceEventKind};
    use std::io::Write;

    let env = Env::new();
    std::fs::create_dir_all(env.root.sudoers_d()).unwrap();
    let mut a = applied(&env);
    // The drop-in tells sudo where to log, and the directory is there, private.
    let text = std::fs::read_to_string(env.drop_in()).unwrap();
    assert!(text.contains("Defaults:alice logfile=/var/log/brevet/sudo.log\n"));
    assert_eq!(mode(&env.root.path(crate::usage::LOG_DIR)), 0o700);
    assert!(env.state.join(format!("baselines/{ID}.json")).exists());

    // During the grant: a command through sudo, and a file under /etc.
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.root.path(crate::usage::SUDO_LOG))
        .unwrap();
    log.write_all(
        b"Nov 28 10:00:05 : alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt-get update\n",
    )
    .unwrap();
    std::fs::write(env.root.path("/etc/motd"), "patched\n").unwrap();

    // Revoked: the last commands are still tied to it, then the changes are summarised.
    a.clock.set(T0 + 10);
    a.sync(&delivery(vec![], T0 + 10)).unwrap();
    let events = a.pending_events(10);
    let kinds: Vec<DeviceEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [DeviceEventKind::GrantUsed, DeviceEventKind::GrantChanges]
    );
    assert!(events.iter().all(|e| e.grant_id == ID));
    let used: CommandUse = serde_json::from_value(events[0].data.clone()).unwrap();
    assert_eq!(used.command, "/usr/bin/apt-get update");
    assert_eq!(events[0].at, rfc3339(T0 + 5));
    let changes: ChangeSummary = serde_json::from_value(events[1].data.clone()).unwrap();
    assert_eq!(
        changes.added,
        ["/etc/motd"],
        "the drop-in itself is not a change"
    );
    assert!(changes.changed.is_empty() && changes.removed.is_empty());
    assert!(!env.state.join(format!("baselines/{ID}.json")).exists());

    // A restart does not read the log again; delivered events are gone for good.
    drop(a);
    let mut a = env.agent_at(T0 + 20);
    a.startup().unwrap();
    a.tick().unwrap();
    assert_eq!(a.pending_event_count(), 2);
    a.events_delivered(2).unwrap();
    let a = env.agent_at(T0 + 30);
    assert_eq!(a.pending_event_count(), 0);
}

#[test]
fn a_disabled_device_removes_everything_it_holds() {
    let env = Env::new();
    let mut a = applied(&env);
    let acks = a.remove_all("device disabled").unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Removed, Some("device disabled"))
    );
    assert!(!env.drop_in().exists());
    assert!(
        a.journal().active.is_empty() || a.journal().active.values().all(|e| e.removing.is_some())
    );
    // Told again (every refused poll): nothing left to do.
    assert!(a.remove_all("device disabled").unwrap().is_empty());
    let removals = a
        .pending_acks()
        .iter()
        .filter(|k| k.action == AckAction::Removed);
    assert_eq!(removals.count(), 1, "the ack waits for the server");
}
