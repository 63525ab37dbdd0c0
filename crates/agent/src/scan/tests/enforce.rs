//! Enforce mode: group removal through the callback and quarantine of foreign drop-ins.

use super::*;

#[test]
fn remediate_removes_members_and_quarantines_foreign_dropins() {
    let t = Tree::standard();
    let root = t.root();
    let allow = Allowlist {
        users: vec!["ops".into()],
        sudoers_files: vec!["ops".into()],
        breakglass_user: Some("bg".into()),
    };
    let mut findings = scan(&root, &Allowlist::default()); // as reported, before the allow-list
    // Forged or stale findings must not widen what enforce mode touches.
    let forged = |id: &str, kind: &str, subject: &str| Finding {
        id: id.into(),
        kind: kind.into(),
        severity: Severity::High,
        subject: subject.into(),
        detail: String::new(),
        remediation: String::new(),
    };
    findings.push(forged(
        "group-member:users:dave",
        KIND_ADMIN_GROUP_MEMBER,
        "dave",
    ));
    findings.push(forged(
        "group-member:sudo:zed",
        KIND_ADMIN_GROUP_MEMBER,
        "zed",
    ));
    findings.push(forged("x", KIND_NOPASSWD, "/etc/sudoers"));
    findings.push(forged("y", KIND_NOPASSWD, "/etc/sudoers.d/../sudoers"));
    findings.push(forged(
        "z",
        KIND_NOPASSWD,
        "/etc/sudoers.d/brevet_0123456789abcdef0123456789abcdef",
    ));
    findings.push(forged("w", KIND_NOPASSWD, "/etc/sudoers.d/old.bak"));

    let before = |sys: &str| t.read(sys).expect(sys);
    let (sudoers, ci, deploy, brevet, ops, bg, bak) = (
        before("/etc/sudoers"),
        before("/etc/sudoers.d/50-ci"),
        before("/etc/sudoers.d/90-deploy"),
        before("/etc/sudoers.d/brevet_0123456789abcdef0123456789abcdef"),
        before("/etc/sudoers.d/ops"),
        before("/etc/sudoers.d/bg-rule"),
        before("/etc/sudoers.d/old.bak"),
    );
    let calls = RefCell::new(Vec::new());
    let record = |user: &str, group: &str| {
        calls
            .borrow_mut()
            .push((user.to_string(), group.to_string()));
        Ok(())
    };
    let qdir = t.dir.path().join("var/lib/brevet-agent/quarantine");
    let now = 1_800_000_000; // 2027-01-15T08:00:00Z
    let (done, errors) = remediate_at(&root, &findings, &allow, &qdir, &record, now);

    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(u, g)| (u.to_string(), g.to_string()))
            .collect::<BTreeSet<_>>()
    };
    let called: BTreeSet<_> = calls.borrow().iter().cloned().collect();
    assert_eq!(calls.borrow().len(), called.len(), "each pair once");
    assert_eq!(
        called,
        pairs(&[
            ("alice", "adm"),
            ("syslog", "adm"),
            ("alice", "sudo"),
            ("bob", "docker"),
        ])
    );

    let stamp = "20270115T080000Z";
    let q = |name: &str| qdir.join(format!("{name}.{stamp}"));
    let quarantined: BTreeSet<_> = done
        .iter()
        .filter_map(|r| match r {
            Remedy::Quarantined { file, to } => Some((file.clone(), to.clone())),
            Remedy::RemovedFromGroup { .. } => None,
        })
        .collect();
    assert_eq!(
        quarantined,
        BTreeSet::from([
            ("/etc/sudoers.d/50-ci".to_string(), q("50-ci")),
            ("/etc/sudoers.d/90-deploy".to_string(), q("90-deploy")),
        ])
    );
    assert_eq!(fs::read(q("50-ci")).expect("quarantined"), ci);
    assert_eq!(fs::read(q("90-deploy")).expect("quarantined"), deploy);
    assert!(t.read("/etc/sudoers.d/50-ci").is_none());
    assert!(t.read("/etc/sudoers.d/90-deploy").is_none());
    let mode = fs::metadata(&qdir).expect("qdir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // Never touched.
    assert_eq!(t.read("/etc/sudoers").as_ref(), Some(&sudoers));
    assert_eq!(
        t.read("/etc/sudoers.d/brevet_0123456789abcdef0123456789abcdef")
            .as_ref(),
        Some(&brevet)
    );
    assert_eq!(t.read("/etc/sudoers.d/ops").as_ref(), Some(&ops));
    assert_eq!(t.read("/etc/sudoers.d/bg-rule").as_ref(), Some(&bg));
    assert_eq!(t.read("/etc/sudoers.d/old.bak").as_ref(), Some(&bak));

    let refused: BTreeSet<String> = errors
        .iter()
        .map(|e| match e {
            Error::NotRemediated { subject, .. } => subject.clone(),
            other => panic!("unexpected error {other}"),
        })
        .collect();
    assert_eq!(
        refused,
        BTreeSet::from([
            "carol in docker".to_string(),        // primary group
            "toor in root".to_string(),           // primary group
            "dave in users".to_string(),          // not an admin group
            "/etc/sudoers.d/bg-rule".to_string(), // names the break-glass user
        ])
    );

    // A second run finds nothing left to move and does not fail.
    let (done, errors) = remediate_at(&root, &findings, &allow, &qdir, &|_, _| Ok(()), now);
    assert!(
        done.iter()
            .all(|r| matches!(r, Remedy::RemovedFromGroup { .. })),
        "{done:?}"
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn remediate_reports_callback_failures_and_keeps_going() {
    let t = Tree::standard();
    let findings = scan(&t.root(), &Allowlist::default());
    let fail = |user: &str, group: &str| -> crate::Result<()> {
        Err(Error::Command {
            command: format!("gpasswd -d {user} {group}"),
            detail: "exit status 3".into(),
        })
    };
    let qdir = t.dir.path().join("q");
    let (done, errors) = remediate_at(&t.root(), &findings, &Allowlist::default(), &qdir, &fail, 0);
    let commands = errors
        .iter()
        .filter(|e| matches!(e, Error::Command { .. }))
        .count();
    assert_eq!(commands, 6); // adm:alice, adm:syslog, docker:bob, sudo:alice, sudo:bg, sudo:ops
    // Files were still quarantined (no break-glass user configured, so bg-rule goes too).
    let moved = done
        .iter()
        .filter(|r| matches!(r, Remedy::Quarantined { .. }))
        .count();
    assert_eq!(moved, 4); // 50-ci, 90-deploy, bg-rule, ops
}

#[test]
fn quarantine_never_overwrites_an_earlier_copy() {
    let t = Tree::new();
    t.write("/etc/sudoers.d/x", "first ALL=ALL\n");
    let root = t.root();
    let qdir = t.dir.path().join("q");
    for content in ["first ALL=ALL\n", "second ALL=ALL\n"] {
        t.write("/etc/sudoers.d/x", content);
        let findings = scan(&root, &Allowlist::default());
        let (done, errors) = remediate_at(
            &root,
            &findings,
            &Allowlist::default(),
            &qdir,
            &|_, _| Ok(()),
            0,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(done.len(), 1);
    }
    let base = qdir.join("x.19700101T000000Z");
    assert_eq!(fs::read_to_string(&base).expect("first"), "first ALL=ALL\n");
    let second = qdir.join("x.19700101T000000Z.1");
    assert_eq!(
        fs::read_to_string(second).expect("second"),
        "second ALL=ALL\n"
    );
}
