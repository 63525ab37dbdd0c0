//! The record of use over real mutual TLS, on SQLite and PostgreSQL: `POST /v1/device/events`
//! records each `grant.used` / `grant.changes` event once as an audit event carrying the grant's
//! request, holder, device and ticket; a batch sent again changes nothing; events about unknown
//! grants or grants of other devices are refused; a malformed batch is refused whole. (The real
//! agent and sudo produce these events in `real_sudo.rs`.)

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::agent::{DeviceEvent, DeviceEventKind};
use common::*;
use serde_json::json;

fn used(id: char, grant: &str, user: &str, command: &str) -> DeviceEvent {
    DeviceEvent {
        id: id.to_string().repeat(64),
        kind: DeviceEventKind::GrantUsed,
        grant_id: grant.to_owned(),
        at: "2026-11-28T10:00:05Z".into(),
        data: json!({
            "user": user, "runas": "root", "cwd": "/home/alice", "command": command,
            "tty": "pts/0", "allowed": true, "logged_time": "Nov 28 10:00:05",
            "time_source": "sudo-log",
        }),
    }
}

fn changes(id: char, grant: &str) -> DeviceEvent {
    DeviceEvent {
        id: id.to_string().repeat(64),
        kind: DeviceEventKind::GrantChanges,
        grant_id: grant.to_owned(),
        at: "2026-11-28T10:30:00Z".into(),
        data: json!({
            "watched": ["/etc"], "since": "2026-11-28T10:00:00Z", "until": "2026-11-28T10:30:00Z",
            "added": ["/etc/motd"], "changed": [], "removed": [],
            "packages_installed": [{ "package": "nginx", "version": "1.22" }],
            "packages_removed": [], "packages_upgraded": [],
            "counts": { "added": 1, "changed": 0, "removed": 0, "packages_installed": 1,
                        "packages_removed": 0, "packages_upgraded": 0 },
            "packages_tracked": true,
        }),
    }
}

both_engines!(device_events_are_recorded_once, |mut h: Harness| {
    let c = h.cast();
    add_device(&c.admin, "db-01");
    let web = h.enrolled(&c.admin, "web-01");
    let db = h.enrolled(&c.admin, "db-01");
    let r = c.alice.create_request(&ask("short", "30m")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();

    let batch = vec![
        used('a', &g, "alice", "/usr/bin/id -u"),
        used('b', &g, "alice", "/usr/bin/id -g"),
        changes('c', &g),
    ];
    let answer = web.events(&batch).unwrap();
    assert_eq!((answer.recorded, answer.duplicates), (3, 0), "{answer:?}");
    assert!(answer.refused.is_empty());

    let recorded = events(&c.admin, "grant.used");
    assert_eq!(recorded.len(), 2);
    let e = &recorded[0];
    assert_eq!(e.actor, "device:web-01");
    assert_eq!(e.subject, g);
    for (k, v) in [
        ("event_id", "a".repeat(64)),
        ("request_id", r.id.clone()),
        ("user", "alice".into()),
        ("device", "web-01".into()),
        ("ticket", "CHG-1234".into()),
        ("role", "short".into()),
        ("command", "/usr/bin/id -u".into()),
        ("cwd", "/home/alice".into()),
        ("runas", "root".into()),
        ("at", "2026-11-28T10:00:05Z".into()),
    ] {
        assert_eq!(e.data[k], json!(v), "{k}: {}", e.data);
    }
    let ch = events(&c.admin, "grant.changes");
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].data["added"], json!(["/etc/motd"]));
    assert_eq!(ch[0].data["packages_installed"][0]["package"], "nginx");

    // Sent again (a lost answer, a reconnect): nothing new.
    let again = web.events(&batch).unwrap();
    assert_eq!((again.recorded, again.duplicates), (0, 3));
    h.restart();
    let again = web.events(&batch[..1]).unwrap();
    assert_eq!(
        (again.recorded, again.duplicates),
        (0, 1),
        "remembered across restarts"
    );
    assert_eq!(events(&c.admin, "grant.used").len(), 2);

    // The same event twice in one batch is recorded once.
    let twice = vec![used('2', &g, "alice", "/usr/bin/true"); 2];
    let answer = web.events(&twice).unwrap();
    assert_eq!((answer.recorded, answer.duplicates), (1, 1), "{answer:?}");
    assert_eq!(events(&c.admin, "grant.used").len(), 3);

    // Another device's grant, an unknown grant, a command of another user: refused, the rest
    // of the batch is recorded.
    let answer = db.events(&[used('d', &g, "alice", "/usr/bin/id")]).unwrap();
    assert_eq!(answer.recorded, 0);
    assert_eq!(answer.refused[0].code, "forbidden", "{answer:?}");
    let unknown = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
    let answer = web
        .events(&[
            used('e', unknown, "alice", "/usr/bin/id"),
            used('f', &g, "bob", "/usr/bin/id"),
            used('1', &g, "alice", "/usr/bin/id -n"),
        ])
        .unwrap();
    let codes: Vec<&str> = answer.refused.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["not_found", "invalid_input"]);
    assert_eq!(answer.recorded, 1);
    assert_eq!(events(&c.admin, "grant.used").len(), 4);

    // A malformed event refuses the whole batch.
    let mut bad = used('2', &g, "alice", "/usr/bin/id");
    bad.data["command"] = json!("/usr/bin/id\u{1b}[2J");
    let err = web
        .events(&[used('3', &g, "alice", "/usr/bin/id"), bad])
        .unwrap_err();
    assert_eq!(err.code, "invalid_input", "{err:?}");
    assert!(err.message.contains("#2"), "{}", err.message);
    assert_eq!(events(&c.admin, "grant.used").len(), 4);
});
