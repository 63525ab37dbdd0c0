//! The verifiable audit log over real HTTPS, on SQLite and PostgreSQL: signed checkpoints that
//! follow the log (and only when it grows), exports that `brevet audit verify` accepts and
//! tampered ones it names the first bad event of, inclusion and consistency proofs, search by
//! person, device and ticket, and the story `brevet grant show` tells.
//!
//! The `brevet` commands run in-process through `brevet_cli::run` with the exact arguments a
//! person would type (`crates/cli/tests/audit_cli.rs` runs the real binaries).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use brevet_audit::{Checkpoint, parse_public_key, verify_inclusion};
use brevet_cli::client::{AuditQuery, Client};
use brevet_proto::agent::{Ack, AckAction};
use brevet_proto::api::AuditEventView;
use brevet_proto::timefmt::rfc3339;
use clap::Parser;
use common::*;
use serde_json::json;

/// Runs `brevet ARGS` in-process as the holder of `token`; returns stdout or the error text.
fn brevet(h: &Harness, token: &str, args: &[&str]) -> Result<String, String> {
    let ca = h.dir.path().join("data/ca.pem");
    let mut all = vec!["brevet", "--server", &h.url, "--ca", ca.to_str().unwrap()];
    all.extend(["--token", token]);
    all.extend(args);
    let cli = brevet_cli::Cli::try_parse_from(all).map_err(|e| e.to_string())?;
    let home = tempfile::tempdir().unwrap();
    let env = brevet_cli::Env {
        config_dir: Some(home.path().to_owned()),
        now: h.now(),
        stdin_is_terminal: false,
    };
    let mut out = Vec::new();
    brevet_cli::run(cli, &env, &mut &b""[..], &mut out).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

/// A session token for `user` (the CLI takes it with `--token`).
fn token(h: &mut Harness, user: &str) -> String {
    let code = h.fresh_code(user);
    let pw = h.password(user);
    h.anonymous().login(user, &pw, &code).expect("login").token
}

fn audit_pub(h: &Harness) -> String {
    h.dir.path().join("data/audit.pub").display().to_string()
}

/// Waits for the latest checkpoint to cover the whole log; returns it.
fn settled_checkpoint(admin: &Client) -> Checkpoint {
    let mut latest = None;
    wait_until("a checkpoint of the whole log", || {
        let size = admin.audit(0, 10_000).unwrap().len() as u64;
        latest = admin.audit_checkpoint().ok().filter(|cp| cp.size == size);
        latest.is_some()
    });
    latest.unwrap()
}

fn count_checkpoints(h: &Harness) -> u64 {
    let app = &h.server.as_ref().unwrap().app;
    h.rt.block_on(app.store.checkpoint_count()).unwrap()
}

fn write(path: &Path, lines: &[&str]) -> String {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
    path.display().to_string()
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

both_engines!(checkpoints_follow_the_log, |mut h: Harness| {
    let c = h.cast();
    let public = parse_public_key(&c.admin.info().unwrap().audit_public_key).unwrap();
    let file = std::fs::read_to_string(audit_pub(&h)).unwrap();
    assert_eq!(
        parse_public_key(&file).unwrap(),
        public,
        "/v1/info serves audit.pub"
    );

    let first = settled_checkpoint(&c.admin);
    first.verify(&public).expect("signed with the audit key");
    // Idle: nothing appended, nothing signed.
    let idle = count_checkpoints(&h);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count_checkpoints(&h), idle, "no checkpoint while idle");

    // New events are covered within about a second.
    h.add_user(&c.admin, "dave", &["operators"]);
    let appended = Instant::now();
    let size = c.admin.audit(0, 10_000).unwrap().len() as u64;
    assert!(size > first.size);
    wait_until("a checkpoint of the new events", || {
        c.admin.audit_checkpoint().unwrap().size == size
    });
    assert!(
        appended.elapsed() < Duration::from_millis(1500),
        "{:?}",
        appended.elapsed()
    );
    let second = c.admin.audit_checkpoint().unwrap();
    second.verify(&public).unwrap();
    let proof = c.admin.audit_consistency(first.size, None).unwrap();
    assert_eq!(proof.to, second.size);
    proof.links(&first, &second).expect("the log only grew");

    // One checkpoint per size, whoever signs it (replicas race on PostgreSQL).
    let app = &h.server.as_ref().unwrap().app;
    let rival = Checkpoint::sign(
        second.size,
        &second.root_hash().unwrap(),
        "2030-01-01T00:00:00Z",
        &app.audit_key.pair,
    );
    assert!(
        !h.rt
            .block_on(app.store.insert_checkpoint(&rival, "", None))
            .unwrap()
    );
    assert_eq!(c.admin.audit_checkpoint().unwrap(), second);

    // A restarted server resumes from its frontier: no new checkpoint while idle, and the next
    // one extends the last.
    h.restart();
    let before = count_checkpoints(&h);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(count_checkpoints(&h), before);
    let admin = h.login("brevet-admin");
    let third = settled_checkpoint(&admin);
    assert!(third.size > second.size, "the login was appended");
    admin
        .audit_consistency(second.size, Some(third.size))
        .unwrap()
        .links(&second, &third)
        .unwrap();
    // A checkpoint is not readable by everyone.
    assert_eq!(api_code(c.alice.audit_checkpoint()), "forbidden");
});

/// Request, approval, delivery, application, three commands, the change summary, done and
/// the confirmed removal: every kind of event of a grant's life.
fn grant_cycle(h: &mut Harness, c: &Cast) -> (String, String) {
    let r = pending(&c.alice, "pkg-update");
    let grant = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let d = h.enrolled(&c.admin, "web-01");
    let ack = |action, reason: Option<&str>| Ack {
        grant_id: grant.clone(),
        action,
        at: rfc3339(h.now()),
        reason: reason.map(str::to_owned),
        detail: json!({}),
    };
    assert_eq!(d.poll(None, 0).unwrap().grants.len(), 1);
    d.acks(&[ack(AckAction::Applied, None)]).unwrap();
    // The record of use, as the agent's events become audit events.
    let app = &h.server.as_ref().unwrap().app;
    h.rt.block_on(async {
        let mut tx = app.store.begin().await.unwrap();
        for cmd in ["/usr/bin/apt-get update", "/usr/bin/apt-get upgrade", "/usr/bin/id"] {
            let data = json!({ "grant_id": grant, "user": "alice", "device": "web-01", "runas": "root",
                               "cwd": "/root", "command": cmd, "allowed": true });
            tx.audit("grant.used", "device:web-01", &grant, data, h.now())
                .await
                .unwrap();
        }
        let changes = json!({ "grant_id": grant, "device": "web-01", "counts": { "added": 1 },
                              "added": ["/etc/brevet-test"], "packages_tracked": false });
        tx.audit("grant.changes", "device:web-01", &grant, changes, h.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    c.alice.done(&grant).unwrap();
    d.acks(&[ack(AckAction::Removed, Some("revoked"))]).unwrap();
    (r.id, grant)
}

both_engines!(exports_verify_and_tampering_is_named, |mut h: Harness| {
    let c = h.cast();
    let admin = token(&mut h, "brevet-admin");
    let tmp = tempfile::tempdir().unwrap();
    let key = audit_pub(&h);

    // A witness keeps a checkpoint now; the log grows after it.
    settled_checkpoint(&c.admin);
    let old_cp = tmp.path().join("old-cp.json");
    let old_path = old_cp.display().to_string();
    let saved = brevet(&h, &admin, &["audit", "checkpoint", "--out", &old_path]).unwrap();
    assert!(saved.starts_with("checkpoint of "), "{saved}");
    let old: Checkpoint = serde_json::from_str(&std::fs::read_to_string(&old_cp).unwrap()).unwrap();
    let (_, grant) = grant_cycle(&mut h, &c);
    let now_cp = settled_checkpoint(&c.admin);
    assert!(now_cp.size > old.size + 10);

    let text = brevet(&h, &admin, &["audit", "export"]).unwrap();
    let export = write(
        &tmp.path().join("export.jsonl"),
        &text.lines().collect::<Vec<_>>(),
    );
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    assert!(n as u64 >= now_cp.size);
    // Every line is in the one form the audit crate writes (canonical `data`), the form the
    // verifier hashes straight from the line's text.
    for line in &lines {
        let sealed: brevet_audit::Sealed = serde_json::from_str(line).unwrap();
        let mut again = Vec::new();
        brevet_audit::write_export_line(&sealed, &mut again).unwrap();
        assert_eq!(std::str::from_utf8(&again).unwrap().trim_end(), *line);
    }
    let ok = brevet(&h, &admin, &["audit", "verify", &export, "--key", &key]).unwrap();
    assert_eq!(ok, format!("ok: {n} events, chain verified\n"));

    // The export extends the checkpoint the witness kept (consistency), and the server's
    // latest checkpoint provably extends it too.
    let verify_cp = |file: &str, cp: &str| {
        brevet(
            &h,
            &admin,
            &["audit", "verify", file, "--key", &key, "--checkpoint", cp],
        )
    };
    assert_eq!(
        verify_cp(&export, &old_path).unwrap(),
        format!(
            "ok: {n} events, chain verified, extends checkpoint of size {}\n",
            old.size
        )
    );
    let new_path = tmp.path().join("new-cp.json").display().to_string();
    let extends = [
        "audit",
        "checkpoint",
        "--out",
        &new_path,
        "--extends",
        &old_path,
    ];
    let saved = brevet(&h, &admin, &extends).unwrap();
    assert!(
        saved.contains(&format!("it extends `{old_path}`")),
        "{saved}"
    );
    assert!(verify_cp(&export, &new_path).is_ok());

    // Each act of tampering is named by its first bad sequence number.
    let failed_at = |name: &str, edited: &[&str], cp: Option<&str>| {
        let path = write(&tmp.path().join(name), edited);
        let r = match cp {
            Some(cp) => verify_cp(&path, cp),
            None => brevet(&h, &admin, &["audit", "verify", &path, "--key", &key]),
        };
        let e = r.expect_err(name);
        let seq: u64 = e
            .strip_prefix("FAILED at seq ")
            .and_then(|r| r.split(':').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {e}"));
        seq
    };
    let k = n / 2;
    let mut edited = lines.clone();
    let changed = lines[k].replacen("\"actor\":\"", "\"actor\":\"x", 1);
    edited[k] = &changed;
    assert_eq!(failed_at("edited", &edited, None), seq_of(lines[k]));
    let mut deleted = lines.clone();
    deleted.remove(k);
    assert_eq!(failed_at("deleted", &deleted, None), seq_of(lines[k]));
    let mut swapped = lines.clone();
    swapped.swap(k, k + 1);
    assert_eq!(failed_at("swapped", &swapped, None), seq_of(lines[k]));
    let mut inserted = lines.clone();
    inserted.insert(k, lines[k - 1]);
    assert_eq!(failed_at("inserted", &inserted, None), seq_of(lines[k]));
    // Cut short before the older checkpoint: the chain alone cannot tell, the checkpoint can.
    let keep = old.size as usize - 2;
    let truncated = &lines[..keep];
    let path = write(&tmp.path().join("truncated"), truncated);
    assert!(brevet(&h, &admin, &["audit", "verify", &path, "--key", &key]).is_ok());
    assert_eq!(
        failed_at("truncated", truncated, Some(&old_path)),
        keep as u64 + 1
    );
    // Someone with the database edits a stored event: the export no longer verifies there.
    h.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3");
    let text = brevet(&h, &admin, &["audit", "export"]).unwrap();
    let forged: Vec<&str> = text.lines().collect();
    assert_eq!(failed_at("db-edit", &forged, Some(&old_path)), 3);

    // An inclusion proof from the API ties one event to the signed root.
    let public = parse_public_key(&std::fs::read_to_string(&key).unwrap()).unwrap();
    let seq = seq_of(lines[k]);
    let p = c.admin.audit_inclusion(seq, Some(now_cp.size)).unwrap();
    let cp = p.checkpoint.clone().expect("the checkpoint of that size");
    cp.verify(&public).unwrap();
    assert_eq!(p.root, cp.root);
    let event: AuditEventView = serde_json::from_str(lines[k]).unwrap();
    assert_eq!(p.leaf_hash, event.leaf_hash);
    let hashes: Vec<[u8; 32]> = p
        .proof
        .iter()
        .map(|x| brevet_audit::hash_from_hex("proof", x).unwrap())
        .collect();
    let leaf = brevet_audit::hash_from_hex("leaf", &event.leaf_hash).unwrap();
    assert!(verify_inclusion(
        &leaf,
        seq - 1,
        p.size,
        &hashes,
        &cp.root_hash().unwrap()
    ));
    assert!(!verify_inclusion(
        &leaf,
        seq,
        p.size,
        &hashes,
        &cp.root_hash().unwrap()
    ));
    assert_eq!(api_code(c.admin.audit_inclusion(0, None)), "invalid_input");
    assert_eq!(
        api_code(c.admin.audit_inclusion(1, Some(1 << 40))),
        "invalid_input"
    );

    // A partial export verifies from where it starts, and says so; not against a checkpoint.
    let since = brevet(&h, &admin, &["grant", "show", &grant, "--json"]).unwrap();
    let issued: serde_json::Value = serde_json::from_str(&since).unwrap();
    let at = issued["issued_at"].as_str().unwrap();
    let text = brevet(&h, &admin, &["audit", "export", "--since", at]).unwrap();
    let part = write(&tmp.path().join("part"), &text.lines().collect::<Vec<_>>());
    let first = seq_of(text.lines().next().unwrap());
    let ok = brevet(&h, &admin, &["audit", "verify", &part, "--key", &key]).unwrap();
    assert!(
        ok.contains(&format!("chain verified from seq {first}")),
        "{ok}"
    );
    let e = verify_cp(&part, &old_path).unwrap_err();
    assert!(
        e.starts_with("FAILED at seq 1: the export starts at event"),
        "{e}"
    );
});

both_engines!(search_by_user_device_and_ticket, |mut h: Harness| {
    let c = h.cast();
    c.admin
        .add_device(&brevet_proto::api::AddDevice {
            name: "db-01".into(),
            tags: [("env".to_owned(), "prod".to_owned())].into(),
            groups: vec!["web".into()],
            os: None,
        })
        .unwrap();
    h.add_user(&c.admin, "dave", &["operators"]);
    let dave = h.login("dave");
    let mut on_db = ask("pkg-update", "30m");
    on_db.device = "db-01".into();
    on_db.ticket = Some("CHG-9".into());
    let r1 = dave.create_request(&on_db).unwrap();
    let r2 = pending(&c.alice, "pkg-update");
    let g2 = c.bob.approve(&r2.id, None).unwrap().grant_id.unwrap();
    c.alice.done(&g2).unwrap();

    let search = |q: AuditQuery| -> Vec<AuditEventView> {
        c.admin
            .audit_search(&AuditQuery { limit: 1000, ..q })
            .unwrap()
    };
    let about = |events: &[AuditEventView], id: &str| events.iter().any(|e| e.subject == id);
    let dave_events = search(AuditQuery {
        user: Some("dave".into()),
        ..Default::default()
    });
    assert!(about(&dave_events, &r1.id));
    assert!(!about(&dave_events, &r2.id) && !about(&dave_events, &g2));
    assert!(dave_events.iter().any(|e| e.kind == "user.created"));

    let alice_events = search(AuditQuery {
        user: Some("alice".into()),
        ..Default::default()
    });
    assert!(about(&alice_events, &r2.id) && about(&alice_events, &g2));
    assert!(!about(&alice_events, &r1.id));
    // Bob approved alice's request: his approval is an event by him.
    let bob_events = search(AuditQuery {
        user: Some("bob".into()),
        ..Default::default()
    });
    assert!(
        bob_events
            .iter()
            .any(|e| e.kind == "request.approval" && e.subject == r2.id)
    );

    let db = search(AuditQuery {
        device: Some("db-01".into()),
        ..Default::default()
    });
    assert!(about(&db, &r1.id) && !about(&db, &r2.id));
    assert!(db.iter().any(|e| e.kind == "device.added"));

    // The ticket finds the grant's events too, though they do not all carry it.
    let t = search(AuditQuery {
        ticket: Some("CHG-1234".into()),
        ..Default::default()
    });
    let kinds: Vec<&str> = t.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "request.created",
            "request.approval",
            "grant.issued",
            "request.approved",
            "grant.completed"
        ]
    );
    let t9 = search(AuditQuery {
        ticket: Some("CHG-9".into()),
        ..Default::default()
    });
    assert!(
        !t9.is_empty() && t9.iter().all(|e| e.subject == r1.id),
        "{t9:?}"
    );

    // Filters combine; kind and time narrow further; pages continue with `after`.
    let both = search(AuditQuery {
        user: Some("alice".into()),
        device: Some("web-01".into()),
        kind: Some("grant.completed".into()),
        ..Default::default()
    });
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].subject, g2);
    let later = search(AuditQuery {
        since: Some("2099-01-01T00:00:00Z".into()),
        ..Default::default()
    });
    assert!(later.is_empty());
    let first_two = c
        .admin
        .audit_search(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    let next = c
        .admin
        .audit_search(&AuditQuery {
            limit: 2,
            after: first_two[1].seq,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next[0].seq, first_two[1].seq + 1);

    // The CLI says the same as a table; bad input never leaves the machine.
    let admin = token(&mut h, "brevet-admin");
    let table = brevet(&h, &admin, &["audit", "search", "--ticket", "CHG-9"]).unwrap();
    assert!(
        table.starts_with("SEQ") && table.contains("asked for pkg-update on db-01"),
        "{table}"
    );
    let e = brevet(&h, &admin, &["audit", "search", "--device", "a/b"]).unwrap_err();
    assert!(e.starts_with("invalid device name"), "{e}");
    // Only readers search everything; a holder reads their own grant's story.
    let any = AuditQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(api_code(c.alice.audit_search(&any)), "forbidden");
    let own = AuditQuery {
        limit: 100,
        grant: Some(g2.clone()),
        ..Default::default()
    };
    assert!(!c.alice.audit_search(&own).unwrap().is_empty());
    assert_eq!(api_code(dave.audit_search(&own)), "forbidden");
});

both_engines!(grant_show_tells_the_story, |mut h: Harness| {
    let c = h.cast();
    let (request, grant) = grant_cycle(&mut h, &c);
    let admin = token(&mut h, "brevet-admin");
    let out = brevet(&h, &admin, &["grant", "show", &grant]).unwrap();
    let story = out
        .split("story:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    let kinds: Vec<&str> = story
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "request.created",
            "request.approval",
            "grant.issued",
            "request.approved",
            "grant.delivered",
            "grant.applied",
            "grant.used",
            "grant.used",
            "grant.used",
            "grant.changes",
            "grant.completed",
            "grant.removal_confirmed",
        ],
        "{out}"
    );
    assert!(
        story.contains("asked for pkg-update on web-01 for 30m, ticket CHG-1234"),
        "{out}"
    );
    assert!(
        story.contains("ran `/usr/bin/id` as root in /root"),
        "{out}"
    );
    assert!(story.contains("files: 1 added"), "{out}");
    assert!(story.contains("removal confirmed by web-01"), "{out}");

    // --json: the grant with its events; the holder may read their own story, others not.
    let alice = token(&mut h, "alice");
    let v: serde_json::Value =
        serde_json::from_str(&brevet(&h, &alice, &["grant", "show", &grant, "--json"]).unwrap())
            .unwrap();
    assert_eq!(v["id"], grant.as_str());
    assert_eq!(v["story"].as_array().unwrap().len(), 12);
    assert_eq!(v["story"][0]["subject"], request.as_str());
    h.add_user(&c.admin, "erin", &["operators"]);
    let erin = token(&mut h, "erin");
    if let Ok(out) = brevet(&h, &erin, &["grant", "show", &grant]) {
        assert!(out.contains("story: not shown"), "{out}");
    }
    // Every event of the grant carries who and where.
    let events = c
        .admin
        .audit_search(&AuditQuery {
            grant: Some(grant.clone()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    // (`grant.used` and `grant.changes` here are the test's own, written above.)
    let server_written = |e: &&AuditEventView| e.kind != "grant.used" && e.kind != "grant.changes";
    for e in events
        .iter()
        .filter(|e| e.kind.starts_with("grant."))
        .filter(server_written)
    {
        for field in ["user", "device", "request_id"] {
            assert!(
                e.data.get(field).is_some(),
                "{} lacks {field}: {}",
                e.kind,
                e.data
            );
        }
    }
});

both_engines!(
    config_and_policy_changes_are_recorded_at_start,
    |mut h: Harness| {
        let mut c = h.cast();
        let config = events(&c.admin, "config.changed");
        let policy = events(&c.admin, "policy.changed");
        assert_eq!(
            (config.len(), policy.len()),
            (1, 1),
            "the first start records both"
        );
        assert_eq!(config[0].actor, "brevetd");
        assert_eq!(config[0].data["previous_sha256"], json!(null));
        assert!(
            config[0].data["roles"]["short"]["commands"].is_array(),
            "{}",
            config[0].data
        );
        assert!(config[0].data.get("db").is_none() && config[0].data.get("listen").is_none());
        let first = policy[0].data["sha256"].as_str().unwrap().to_owned();
        let ids = policy[0].data["policies"].as_array().unwrap();
        assert!(ids.contains(&json!("operators-may-request")), "{ids:?}");
        let text = std::fs::read_to_string(h.data().policy()).unwrap();
        assert_eq!(policy[0].data["text"], json!(text));

        h.restart();
        c.admin = h.login("brevet-admin");
        assert_eq!(
            events(&c.admin, "policy.changed").len(),
            1,
            "unchanged: nothing new"
        );
        assert_eq!(events(&c.admin, "config.changed").len(), 1);

        let edited = format!("{text}\n// tightened on 2026-11-29\n");
        std::fs::write(h.data().policy(), &edited).unwrap();
        h.restart();
        c.admin = h.login("brevet-admin");
        let policy = events(&c.admin, "policy.changed");
        assert_eq!(policy.len(), 2);
        assert_eq!(policy[1].data["previous_sha256"], json!(first));
        assert_eq!(policy[1].data["text"], json!(edited));
        assert_eq!(events(&c.admin, "config.changed").len(), 1);
    }
);
