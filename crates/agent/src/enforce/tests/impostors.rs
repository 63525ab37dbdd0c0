//! Reconciliation removes only what has exactly the shape of the agent's own drop-ins; anything
//! else named `brevet_*` is someone else's, and is moved to the quarantine (never deleted) and
//! reported.

use super::*;

#[test]
fn reconcile_quarantines_what_is_named_like_a_drop_in_but_is_not_one() {
    let env = Env::new();
    let mut a = applied(&env);
    // Named `brevet_…` but not `brevet_` + 32 lower-case hex digits: not the agent's. The old
    // agent deleted every `brevet_*` file it did not own, destroying the evidence.
    let impostors = [
        "brevet_",
        "brevet_FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "brevet_backdoor",
        "brevet_ffffffffffffffffffffffffffffffff0",
    ];
    for name in impostors {
        std::fs::write(
            env.root.sudoers_d().join(name),
            format!("mallory ALL=(ALL) NOPASSWD: ALL # {name}\n"),
        )
        .unwrap();
    }
    // The agent's exact shape, but a symlink: not something the agent wrote either.
    let linked = "brevet_eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    std::os::unix::fs::symlink("/etc/shadow", env.root.sudoers_d().join(linked)).unwrap();
    // An orphan of the agent's exact shape is still removed.
    let orphan = "brevet_ffffffffffffffffffffffffffffffff";
    std::fs::write(env.root.sudoers_d().join(orphan), "x\n").unwrap();

    let report = reconcile(&mut a).unwrap();
    assert_eq!(report.removed_orphans, [orphan]);
    assert_eq!(env.sudoers_d(), [FILE], "all moved out of sudoers.d");

    // Never deleted: each is in STATE_DIR/quarantine (0700), as `<name>.<UTC time>`, intact.
    let q = env.state.join("quarantine");
    assert_eq!(mode(&q), 0o700);
    let mut moved: Vec<String> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    moved.sort();
    let stamp = "20261128T100000Z"; // T0
    let mut want: Vec<String> = impostors
        .iter()
        .chain([&linked])
        .map(|n| format!("{n}.{stamp}"))
        .collect();
    want.sort();
    assert_eq!(moved, want);
    for name in impostors {
        let text = std::fs::read_to_string(q.join(format!("{name}.{stamp}"))).unwrap();
        assert!(text.ends_with(&format!("# {name}\n")), "{text}");
    }
    let link = std::fs::symlink_metadata(q.join(format!("{linked}.{stamp}"))).unwrap();
    assert!(link.file_type().is_symlink());

    // And reported, one high finding each, queued for the server.
    let mut ids: Vec<String> = a
        .pending_drift()
        .iter()
        .filter(|f| f.id.starts_with("drift:impostor-drop-in:"))
        .map(|f| {
            f.id.trim_start_matches("drift:impostor-drop-in:")
                .to_owned()
        })
        .collect();
    ids.sort();
    let mut names: Vec<&str> = impostors.iter().chain([&linked]).copied().collect();
    names.sort();
    assert_eq!(ids, names, "{:?}", a.pending_drift());
    assert!(
        report
            .drift
            .iter()
            .all(|f| f.severity == brevet_proto::agent::Severity::High)
    );
}
