//! The record of use over a fake tree: sudo's log read once across restarts and rotation, each
//! entry tied to the right grant with a checked time, baselines compared at removal.

use std::io::Write;

use brevet_proto::agent::{ChangeSummary, CommandUse};
use brevet_proto::canonical;
use brevet_proto::grant::SignedGrant;

use super::*;
use crate::verify::tests::T0;

const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
const OTHER: &str = "9b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

struct Env {
    _tmp: tempfile::TempDir,
    root: Root,
    state: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("root"));
        fs::create_dir_all(root.path("/etc")).unwrap();
        let state = tmp.path().join("state");
        Env {
            _tmp: tmp,
            root,
            state,
        }
    }

    /// A journal holding the sample grant (alice), applied at `applied`, and a usage recorder,
    /// both opened as after a start.
    fn open(&self) -> (Journal, Usage) {
        let j = Journal::load(&self.state).unwrap();
        let u = Usage::open(&self.root, &self.state).unwrap();
        (j, u)
    }

    fn log(&self, text: &str) {
        ensure_log_dir(&self.root).unwrap();
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path(SUDO_LOG))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
}

fn entry(id: &str, user: &str, applied: Option<i64>) -> Entry {
    let mut doc = crate::sudoers::render_tests_doc();
    doc.grant_id = id.into();
    doc.user = user.into();
    Entry {
        signed: SignedGrant {
            doc: canonical::to_string(&doc).unwrap(),
            sig: "c2ln".into(),
        },
        doc,
        applied_at: applied,
        drop_in: None,
        groups: vec![],
        removing: None,
    }
}

fn uses(u: &Usage) -> Vec<(DeviceEvent, CommandUse)> {
    u.pending(usize::MAX)
        .into_iter()
        .filter(|e| e.kind == DeviceEventKind::GrantUsed)
        .map(|e| {
            let d = serde_json::from_value(e.data.clone()).unwrap();
            (e, d)
        })
        .collect()
}

/// `Nov 28 10:00:SS`: T0 is 2026-11-28T10:00:00Z.
fn line(secs: u32, user: &str, rest: &str) -> String {
    format!(
        "Nov 28 10:{:02}:{:02} : {user} : {rest}\n",
        secs / 60,
        secs % 60
    )
}

#[test]
fn each_command_becomes_one_event_tied_to_its_grant() {
    let env = Env::new();
    let (mut j, mut u) = env.open();
    j.active.insert(ID.into(), entry(ID, "alice", Some(T0)));
    assert_eq!(
        u.collect(&env.root, &mut j, T0 + 1).unwrap(),
        0,
        "no log yet"
    );

    env.log(&line(
        10,
        "alice",
        "TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt-get update",
    ));
    env.log(&line(
        11,
        "alice",
        "command not allowed ; TTY=pts/0 ; PWD=/home/alice ; USER=root ;\n    COMMAND=/bin/sh",
    ));
    env.log(&line(12, "bob", "PWD=/ ; USER=root ; COMMAND=/usr/bin/id"));
    env.log("garbage that is not sudo's\n");
    env.log(&line(
        13,
        "alice",
        "PWD=/tmp ; USER=postgres ; COMMAND=/usr/bin/id -u",
    ));
    assert_eq!(u.collect(&env.root, &mut j, T0 + 20).unwrap(), 3);
    let got = uses(&u);
    // (at, runas, cwd, command, allowed, tty)
    type Row<'a> = (&'a str, &'a str, &'a str, &'a str, bool, Option<&'a str>);
    let summary: Vec<Row> = got
        .iter()
        .map(|(e, d)| {
            assert_eq!(e.grant_id, ID);
            assert_eq!(d.user, "alice");
            assert_eq!(d.time_source, "sudo-log");
            (
                e.at.as_str(),
                d.runas.as_str(),
                d.cwd.as_str(),
                d.command.as_str(),
                d.allowed,
                d.tty.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "2026-11-28T10:00:10Z",
                "root",
                "/home/alice",
                "/usr/bin/apt-get update",
                true,
                Some("pts/0")
            ),
            (
                "2026-11-28T10:00:11Z",
                "root",
                "/home/alice",
                "/bin/sh",
                false,
                Some("pts/0")
            ),
            (
                "2026-11-28T10:00:13Z",
                "postgres",
                "/tmp",
                "/usr/bin/id -u",
                true,
                None
            ),
        ]
    );
    assert_eq!(got[1].1.refusal.as_deref(), Some("command not allowed"));
    assert_eq!(got[0].1.logged_time, "Nov 28 10:00:10");
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|(e, _)| e.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(got.iter().all(|(e, _)| e.id.len() == 64));

    // Nothing twice: not on the next read, not after a restart.
    assert_eq!(u.collect(&env.root, &mut j, T0 + 21).unwrap(), 0);
    j.save().unwrap();
    let (mut j, mut u) = env.open();
    assert_eq!(u.pending_len(), 3, "the queue survived");
    assert_eq!(u.collect(&env.root, &mut j, T0 + 22).unwrap(), 0);
    env.log(&line(
        30,
        "alice",
        "PWD=/ ; USER=root ; COMMAND=/usr/bin/apt-get upgrade",
    ));
    assert_eq!(u.collect(&env.root, &mut j, T0 + 31).unwrap(), 1);
    assert_eq!(u.pending_len(), 4);

    // Reading the whole log again (a lost position) yields the same ids: nothing new queued.
    j.usage.log = None;
    u.collect(&env.root, &mut j, T0 + 32).unwrap();
    assert_eq!(u.pending_len(), 4);

    // Delivered events leave the queue for good.
    u.delivered(3).unwrap();
    let (_, u) = env.open();
    assert_eq!(uses(&u)[0].1.command, "/usr/bin/apt-get upgrade");
}

#[test]
fn rotation_and_truncation_lose_nothing_and_repeat_nothing() {
    let env = Env::new();
    let (mut j, mut u) = env.open();
    j.active.insert(ID.into(), entry(ID, "alice", Some(T0)));
    env.log(&line(1, "alice", "PWD=/ ; USER=root ; COMMAND=/bin/a"));
    assert_eq!(u.collect(&env.root, &mut j, T0 + 2).unwrap(), 1);
    // Written, then rotated before the agent read it; then a new file.
    env.log(&line(3, "alice", "PWD=/ ; USER=root ; COMMAND=/bin/b"));
    let log = env.root.path(SUDO_LOG);
    fs::rename(&log, log.with_extension("log.1")).unwrap();
    env.log(&line(4, "alice", "PWD=/ ; USER=root ; COMMAND=/bin/c"));
    assert_eq!(u.collect(&env.root, &mut j, T0 + 5).unwrap(), 2);
    // Truncated in place: read again from the start.
    fs::write(&log, line(6, "alice", "PWD=/ ; USER=root ; COMMAND=/bin/d")).unwrap();
    assert_eq!(u.collect(&env.root, &mut j, T0 + 7).unwrap(), 1);
    let commands: Vec<String> = uses(&u).into_iter().map(|(_, d)| d.command).collect();
    assert_eq!(commands, ["/bin/a", "/bin/b", "/bin/c", "/bin/d"]);
}

#[test]
fn logged_times_are_converted_and_checked() {
    let env = Env::new();
    // The device is at UTC+1: sudo writes 11:00:10 for 10:00:10Z.
    fs::write(
        env.root.path("/etc/localtime"),
        localtime::tests::tzif(3600),
    )
    .unwrap();
    let (mut j, mut u) = env.open();
    j.active.insert(ID.into(), entry(ID, "alice", Some(T0)));
    u.collect(&env.root, &mut j, T0).unwrap();
    env.log("Nov 28 11:00:10 : alice : PWD=/ ; USER=root ; COMMAND=/bin/a\n");
    // `TZ=XYZ+48 sudo …` moves the logged time two days back: the agent's time is used.
    env.log("Nov 26 11:00:11 : alice : PWD=/ ; USER=root ; COMMAND=/bin/b\n");
    // With `log_year`, and a year off: also not plausible.
    env.log("Nov 28 11:00:12 2025 : alice : PWD=/ ; USER=root ; COMMAND=/bin/c\n");
    u.collect(&env.root, &mut j, T0 + 20).unwrap();
    let got: Vec<(String, String)> = uses(&u)
        .into_iter()
        .map(|(e, d)| (e.at, d.time_source))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-28T10:00:10Z".into(), "sudo-log".into()),
            ("2026-11-28T10:00:20Z".into(), "agent".into()),
            ("2026-11-28T10:00:20Z".into(), "agent".into()),
        ]
    );
    // A year boundary: `Dec 31 23:59:59` read on Jan 1 is last year's.
    let u2 = Usage::open(&Root::new(env.root.path("/nowhere")), &env.state).unwrap();
    let jan1 = 1_798_761_600; // 2027-01-01T00:00:00Z
    let t = sudolog::parse("Dec 31 23:59:59 : a : PWD=/ ; USER=root ; COMMAND=/x").unwrap();
    assert_eq!(u2.logged_utc(&t.time, jan1 + 5), Some(jan1 - 1));
    // No such day: the agent's time is used, never a guess.
    let t = sudolog::parse("Feb 30 10:00:00 : a : PWD=/ ; USER=root ; COMMAND=/x").unwrap();
    assert_eq!(u2.logged_utc(&t.time, jan1 + 5), None);
}

#[test]
fn entries_go_to_the_grant_in_force_when_written() {
    let mut active = BTreeMap::new();
    active.insert(ID.to_owned(), entry(ID, "alice", Some(T0 + 100)));
    active.insert("waiting".to_owned(), entry(OTHER, "alice", None));
    let recent = vec![RecentGrant {
        grant_id: OTHER.into(),
        user: "alice".into(),
        applied_at: T0,
        ended_at: T0 + 50,
    }];
    for (at, user, want) in [
        (T0 + 10, "alice", Some(OTHER)), // during the ended grant
        (T0 + 60, "alice", Some(OTHER)), // moments after its end (sudo was already running)
        (T0 + 150, "alice", Some(ID)),   // during the grant in force
        (T0 + 99, "alice", Some(ID)),    // a second early (times are whole seconds)
        (T0 - 500, "alice", Some(ID)),   // no grant then: the one in force now
        (T0 + 150, "bob", None),         // not a grant user
    ] {
        assert_eq!(
            tie(&active, &recent, user, at).as_deref(),
            want,
            "{user} at {at}"
        );
    }
    // Only ended grants: the last one to end.
    assert_eq!(
        tie(&BTreeMap::new(), &recent, "alice", T0 + 500).as_deref(),
        Some(OTHER)
    );
}

#[test]
fn a_grant_s_changes_are_summarised_at_its_end() {
    let env = Env::new();
    fs::write(env.root.path("/etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    fs::create_dir_all(env.root.path("/var/lib/dpkg")).unwrap();
    fs::write(
        env.root.path(changes::DPKG_STATUS),
        "Package: bash\nStatus: install ok installed\nVersion: 5.2\n",
    )
    .unwrap();
    let (mut j, mut u) = env.open();
    u.set_watch(vec!["/etc".into()]);
    let e = entry(ID, "alice", Some(T0));
    u.applied(&env.root, ID, T0).unwrap();
    assert!(env.state.join(format!("baselines/{ID}.json")).exists());

    fs::write(env.root.path("/etc/motd"), "hi\n").unwrap();
    fs::write(
        env.root.path(changes::DPKG_STATUS),
        "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\n\
         Package: nginx\nStatus: install ok installed\nVersion: 1.22\n",
    )
    .unwrap();
    u.ended(&env.root, &mut j, &e, T0 + 60).unwrap();
    assert!(!env.state.join(format!("baselines/{ID}.json")).exists());
    let events = u.pending(10);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, DeviceEventKind::GrantChanges);
    assert_eq!(events[0].at, rfc3339(T0 + 60));
    let s: ChangeSummary = serde_json::from_value(events[0].data.clone()).unwrap();
    assert_eq!(s.added, ["/etc/motd"]);
    assert_eq!(s.packages_installed[0].package, "nginx");
    assert_eq!(s.since, rfc3339(T0));
    assert_eq!(j.usage.recent[0].grant_id, ID);

    // Ending it again (a removal retried after a crash): the same id, not queued twice.
    u.ended(&env.root, &mut j, &e, T0 + 70).unwrap();
    assert_eq!(u.pending_len(), 1);
    u.delivered(1).unwrap();
    // Without a baseline the summary says so.
    u.ended(&env.root, &mut j, &entry(OTHER, "alice", Some(T0)), T0 + 80)
        .unwrap();
    let s: ChangeSummary = serde_json::from_value(u.pending(1)[0].data.clone()).unwrap();
    assert!(s.baseline_missing && s.added.is_empty());
}

#[test]
fn summaries_fit_the_server_s_limit() {
    let mut s = ChangeSummary::default();
    for i in 0..changes::MAX_LIST {
        s.added.push(format!("/etc/{}/{i}", "x".repeat(1000)));
    }
    let v = fit(s).unwrap();
    assert!(v.to_string().len() <= MAX_CHANGES_BYTES);
    let back: ChangeSummary = serde_json::from_value(v).unwrap();
    assert!(!back.added.is_empty());
}

#[test]
fn text_from_the_log_is_bounded_and_printable() {
    assert_eq!(clean("a\tb\u{7}", 10), "a#011b#007");
    assert_eq!(clean("abcdef", 3), "abc");
}
