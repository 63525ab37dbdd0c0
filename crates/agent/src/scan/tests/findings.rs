//! What the scan reports, line by line and for a whole endpoint.

use super::*;

fn expected_standard() -> Vec<(String, &'static str, Severity)> {
    use Severity::*;
    let admin = line_of(SUDOERS, "%admin");
    let sudo = line_of(SUDOERS, "%sudo\t");
    let mut v = vec![
        (
            "group-member:adm:alice".into(),
            KIND_ADMIN_GROUP_MEMBER,
            Low,
        ),
        (
            "group-member:adm:syslog".into(),
            KIND_ADMIN_GROUP_MEMBER,
            Low,
        ),
        (
            "group-member:docker:bob".into(),
            KIND_ADMIN_GROUP_MEMBER,
            Critical,
        ),
        (
            "group-member:docker:carol".into(),
            KIND_ADMIN_GROUP_MEMBER,
            Critical,
        ),
        (
            "group-member:root:toor".into(),
            KIND_ADMIN_GROUP_MEMBER,
            High,
        ),
        (
            "group-member:sudo:alice".into(),
            KIND_ADMIN_GROUP_MEMBER,
            High,
        ),
        ("group-member:sudo:bg".into(), KIND_ADMIN_GROUP_MEMBER, High),
        (
            "group-member:sudo:ops".into(),
            KIND_ADMIN_GROUP_MEMBER,
            High,
        ),
        ("uid0-account:toor".into(), KIND_UID0_ACCOUNT, Critical),
        (
            format!("sudoers-rule:/etc/sudoers:{admin}"),
            KIND_GROUP_SUDO_RULE,
            Info,
        ),
        (
            format!("sudoers-rule:/etc/sudoers:{sudo}"),
            KIND_GROUP_SUDO_RULE,
            High,
        ),
        (
            "sudoers-rule:/etc/sudoers.d/90-deploy:2".into(),
            KIND_FOREIGN_SUDOERS_RULE,
            High,
        ),
        (
            "nopasswd:/etc/sudoers.d/90-deploy:2".into(),
            KIND_NOPASSWD,
            High,
        ),
        (
            "no-authenticate:/etc/sudoers.d/50-ci:2".into(),
            KIND_NO_AUTHENTICATE,
            Critical,
        ),
        (
            "sudoers-rule:/etc/sudoers.d/50-ci:4".into(),
            KIND_FOREIGN_SUDOERS_RULE,
            Medium,
        ),
        (
            "cached-credentials:/etc/sudoers.d/50-ci:6".into(),
            KIND_CACHED_CREDENTIALS,
            Medium,
        ),
        (
            "sudoers-rule:/etc/sudoers.d/ops:1".into(),
            KIND_FOREIGN_SUDOERS_RULE,
            High,
        ),
        (
            "sudoers-rule:/etc/sudoers.d/bg-rule:1".into(),
            KIND_FOREIGN_SUDOERS_RULE,
            High,
        ),
        (
            "root-authorized-keys:/root/.ssh/authorized_keys".into(),
            KIND_ROOT_AUTHORIZED_KEYS,
            High,
        ),
        (
            "sudo-timestamp:/run/sudo/ts/alice".into(),
            KIND_SUDO_TIMESTAMP,
            Medium,
        ),
        (
            "sudo-timestamp:/var/run/sudo-rs/ts/1001".into(),
            KIND_SUDO_TIMESTAMP,
            Medium,
        ),
    ];
    v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    v
}

#[test]
fn scan_finds_exactly_the_expected_set_in_order() {
    let t = Tree::standard();
    let got = summary(&scan(&t.root(), &Allowlist::default()));
    let want: Vec<(String, String, Severity)> = expected_standard()
        .into_iter()
        .map(|(id, kind, sev)| (id, kind.to_string(), sev))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn findings_are_actionable_and_never_echo_key_material() {
    let t = Tree::standard();
    let findings = scan(&t.root(), &Allowlist::default());
    for f in &findings {
        assert!(!f.detail.is_empty() && !f.remediation.is_empty(), "{f:?}");
        assert!(!f.subject.is_empty(), "{f:?}");
        for field in [&f.id, &f.subject, &f.detail, &f.remediation] {
            assert!(!field.contains("AAAA"), "key material in {f:?}");
            assert!(!field.contains("FakeKeyMaterial"), "key material in {f:?}");
        }
    }
    let by_id = |id: &str| findings.iter().find(|f| f.id == id).expect(id);
    let keys = by_id("root-authorized-keys:/root/.ssh/authorized_keys");
    assert!(keys.detail.contains("2 key(s)"), "{}", keys.detail);
    let ts = by_id("sudo-timestamp:/var/run/sudo-rs/ts/1001");
    assert_eq!(ts.subject, "bob"); // uid 1001 resolved through /etc/passwd
    assert_eq!(by_id("sudo-timestamp:/run/sudo/ts/alice").subject, "alice");
    let sudo = by_id(&format!(
        "sudoers-rule:/etc/sudoers:{}",
        line_of(SUDOERS, "%sudo\t")
    ));
    assert!(sudo.detail.contains("alice, bg, ops"), "{}", sudo.detail);
    let carol = by_id("group-member:docker:carol");
    assert!(
        carol.remediation.contains("usermod -g"),
        "{}",
        carol.remediation
    );
    let deploy = by_id("group-member:docker:bob");
    assert!(deploy.remediation.contains("gpasswd -d bob docker"));
}

#[test]
fn allow_list_suppresses_exactly_what_it_names() {
    let sudo_rule = format!("sudoers-rule:/etc/sudoers:{}", line_of(SUDOERS, "%sudo\t"));
    let users = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    struct Case {
        allow: Allowlist,
        gone: Vec<&'static str>,
        /// (id, severity it must now have)
        changed: Vec<(String, Severity)>,
    }
    let cases = [
        Case {
            allow: Allowlist {
                users: users(&["alice"]),
                ..Allowlist::default()
            },
            gone: vec!["group-member:adm:alice", "group-member:sudo:alice"],
            changed: vec![],
        },
        Case {
            allow: Allowlist {
                breakglass_user: Some("bg".into()),
                ..Allowlist::default()
            },
            gone: vec!["group-member:sudo:bg"],
            changed: vec![],
        },
        Case {
            allow: Allowlist {
                sudoers_files: users(&["90-deploy", "ops"]),
                ..Allowlist::default()
            },
            // The rules are sanctioned; NOPASSWD in them is still reported.
            gone: vec![
                "sudoers-rule:/etc/sudoers.d/90-deploy:2",
                "sudoers-rule:/etc/sudoers.d/ops:1",
            ],
            changed: vec![],
        },
        Case {
            allow: Allowlist {
                users: users(&["alice", "ops"]),
                sudoers_files: vec![],
                breakglass_user: Some("bg".into()),
            },
            gone: vec![
                "group-member:adm:alice",
                "group-member:sudo:alice",
                "group-member:sudo:ops",
                "group-member:sudo:bg",
            ],
            // Nobody un-sanctioned is left in `sudo`: the rule is dormant.
            changed: vec![(sudo_rule.clone(), Severity::Info)],
        },
    ];
    let t = Tree::standard();
    let all: BTreeSet<String> = expected_standard().into_iter().map(|e| e.0).collect();
    for (i, case) in cases.iter().enumerate() {
        let findings = scan(&t.root(), &case.allow);
        let got: BTreeSet<String> = findings.iter().map(|f| f.id.clone()).collect();
        let want: BTreeSet<String> = all
            .iter()
            .filter(|id| !case.gone.contains(&id.as_str()))
            .cloned()
            .collect();
        assert_eq!(got, want, "case {i}");
        for (id, sev) in &case.changed {
            let f = findings.iter().find(|f| &f.id == id).expect("present");
            assert_eq!(f.severity, *sev, "case {i}: {id}");
        }
    }
}

/// What one sudoers text yields, as `(kind, severity, line)`, in /etc/sudoers.d or /etc/sudoers.
fn kinds_of(sys: &str, content: &str) -> Vec<(String, Severity, String)> {
    let t = Tree::new();
    t.write("/etc/passwd", PASSWD);
    t.write("/etc/group", GROUP);
    t.write(sys, content);
    scan(&t.root(), &Allowlist::default())
        .into_iter()
        .filter(|f| f.kind != KIND_ADMIN_GROUP_MEMBER && f.kind != KIND_UID0_ACCOUNT)
        .map(|f| {
            let line = f.id.rsplit(':').next().unwrap_or_default().to_string();
            (f.kind, f.severity, line)
        })
        .collect()
}

#[test]
fn sudoers_lines_table() {
    use Severity::*;
    let foreign = KIND_FOREIGN_SUDOERS_RULE;
    let cached = KIND_CACHED_CREDENTIALS;
    let noauth = KIND_NO_AUTHENTICATE;
    let dropin = "/etc/sudoers.d/t";
    let main = "/etc/sudoers";
    type Want<'a> = &'a [(&'a str, Severity, &'a str)];
    let cases: &[(&str, &str, Want)] = &[
        (dropin, "alice ALL=(ALL) ALL", &[(foreign, High, "1")]),
        (dropin, "ALL ALL=(ALL) ALL", &[(foreign, Critical, "1")]),
        (dropin, "alice ALL=/usr/bin/id", &[(foreign, Medium, "1")]),
        (dropin, "root ALL=(ALL) NOPASSWD: ALL", &[]),
        (
            dropin,
            "%wheel ALL=(ALL) NOPASSWD: ALL",
            &[(foreign, High, "1"), (KIND_NOPASSWD, High, "1")],
        ),
        (
            dropin,
            "\n\nbob ALL=(ALL) \\\n  NOPASSWD: ALL",
            &[(foreign, High, "3"), (KIND_NOPASSWD, High, "3")],
        ),
        (
            dropin,
            "alice ALL=(ALL) ALL # NOPASSWD: ALL",
            &[(foreign, High, "1")],
        ),
        (dropin, "Cmnd_Alias X = /bin/ls\ngarbage line", &[]),
        (
            dropin,
            "Defaults env_reset\nDefaults:alice timestamp_timeout=0",
            &[],
        ),
        (
            dropin,
            "Defaults timestamp_timeout=15",
            &[(cached, Medium, "1")],
        ),
        (
            dropin,
            "Defaults timestamp_timeout = -1",
            &[(cached, Medium, "1")],
        ),
        (dropin, "Defaults timestamp_timeout=0.0", &[]),
        (dropin, "Defaults !timestamp_timeout", &[]),
        (dropin, "Defaults !tty_tickets", &[(cached, Medium, "1")]),
        (dropin, "Defaults tty_tickets", &[]),
        (
            dropin,
            "Defaults:alice timestamp_type=global",
            &[(cached, Medium, "1")],
        ),
        (dropin, "Defaults timestamp_type=tty", &[]),
        (dropin, "Defaults !authenticate", &[(noauth, Critical, "1")]),
        (dropin, "Defaults !!authenticate", &[]),
        (
            dropin,
            "Defaults!/usr/bin/apt !authenticate",
            &[(noauth, Critical, "1")],
        ),
        (
            dropin,
            "Defaults>root !authenticate",
            &[(noauth, Critical, "1")],
        ),
        (dropin, "#Defaults !authenticate", &[]),
        (main, "alice ALL=(ALL) ALL", &[(foreign, High, "1")]),
        (
            "/etc/sudoers-rs",
            "%sudo ALL=(ALL:ALL) ALL",
            &[(KIND_GROUP_SUDO_RULE, High, "1")],
        ),
        (
            main,
            "%sudo ALL=(ALL:ALL) ALL",
            &[(KIND_GROUP_SUDO_RULE, High, "1")],
        ),
        (
            main,
            "%#27 ALL=(ALL:ALL) ALL",
            &[(KIND_GROUP_SUDO_RULE, High, "1")],
        ),
        (
            main,
            "%lxd ALL=(ALL:ALL) ALL",
            &[(KIND_GROUP_SUDO_RULE, Info, "1")],
        ),
        (
            main,
            "%sudo, alice ALL=(ALL:ALL) ALL",
            &[(foreign, High, "1")],
        ),
    ];
    for (sys, content, want) in cases {
        let mut got = kinds_of(sys, content);
        got.sort();
        let mut want: Vec<_> = want
            .iter()
            .map(|(k, s, l)| (k.to_string(), *s, l.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{sys}: {content:?}");
    }
}

#[test]
fn details_name_what_was_found() {
    let t = Tree::standard();
    let findings = scan(&t.root(), &Allowlist::default());
    let detail = |id: &str| &findings.iter().find(|f| f.id == id).expect(id).detail;
    let cached = detail("cached-credentials:/etc/sudoers.d/50-ci:6");
    assert!(cached.contains("`!tty_tickets`"), "{cached}");
    assert!(cached.contains("`timestamp_timeout=30`"), "{cached}");
    let gid = kinds_of("/etc/sudoers", "%#27 ALL=(ALL:ALL) ALL");
    assert_eq!(gid.len(), 1);
}

#[test]
fn includes_stay_inside_the_root() {
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("sudoers"), "mallory ALL=ALL\n").expect("write");
    let t = Tree::new();
    t.write(
        "/etc/sudoers",
        "#include sudoers.local\n\
         @include /etc/../etc/shadow\n\
         @include /etc/escape\n\
         #include /etc/sudoers\n\
         @include \"/etc/with space\"\n\
         @include /etc/sudoers.%h\n\
         @include /etc/chain/0\n",
    );
    t.write("/etc/sudoers.local", "eve ALL=(ALL) ALL\n");
    t.write("/etc/with space", "frank ALL=/usr/bin/id\n");
    std::os::unix::fs::symlink(outside.path().join("sudoers"), t.root().path("/etc/escape"))
        .expect("symlink");
    for i in 0..12 {
        t.write(
            &format!("/etc/chain/{i}"),
            format!("@include /etc/chain/{}\nu{i} ALL=ALL\n", i + 1),
        );
    }
    let got: Vec<(String, String)> = scan(&t.root(), &Allowlist::default())
        .into_iter()
        .map(|f| (f.id, f.kind))
        .collect();
    let mut want: Vec<(String, String)> = vec![
        (
            "sudoers-rule:/etc/sudoers.local:1".into(),
            KIND_FOREIGN_SUDOERS_RULE.into(),
        ),
        (
            "sudoers-rule:/etc/with space:1".into(),
            KIND_FOREIGN_SUDOERS_RULE.into(),
        ),
        ("scan-error:/etc/sudoers:2".into(), KIND_SCAN_ERROR.into()),
        ("scan-error:/etc/escape".into(), KIND_SCAN_ERROR.into()),
        ("scan-error:/etc/sudoers:6".into(), KIND_SCAN_ERROR.into()),
        ("scan-error:/etc/chain/8".into(), KIND_SCAN_ERROR.into()),
    ];
    // chain/0 is read at depth 1, chain/7 at depth 8; chain/8 is one too deep.
    for i in 0..8 {
        want.push((
            format!("sudoers-rule:/etc/chain/{i}:2"),
            KIND_FOREIGN_SUDOERS_RULE.into(),
        ));
    }
    let got: BTreeSet<_> = got.into_iter().collect();
    let want: BTreeSet<_> = want.into_iter().collect();
    assert_eq!(got, want);
    assert!(!got.iter().any(|(id, _)| id.contains("mallory")));
}

#[test]
fn unreadable_files_make_the_scan_say_it_is_incomplete() {
    let t = Tree::new();
    fs::create_dir_all(t.root().path("/etc/passwd")).expect("a directory where a file belongs");
    t.write(
        "/etc/sudoers.d/big",
        vec![b'#'; (files::MAX_BYTES + 1) as usize],
    );
    let ids: Vec<String> = scan(&t.root(), &Allowlist::default())
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(
        ids,
        ["scan-error:/etc/passwd", "scan-error:/etc/sudoers.d/big"]
    );
}

#[test]
fn allowlist_config_is_strict() {
    let ok: Allowlist =
        serde_json::from_str(r#"{"users":["ops"],"breakglass_user":"bg"}"#).expect("parses");
    assert_eq!(ok.users, ["ops"]);
    assert!(ok.sudoers_files.is_empty());
    assert!(serde_json::from_str::<Allowlist>(r#"{"user":["ops"]}"#).is_err());
}
