//! The audit trail: events land with their change or not at all, the chain verifies (also under
//! concurrent appenders), search finds events by what they are about, device events are
//! recorded once, checkpoints are stored once per size.

use brevet_audit::{Checkpoint, Head, verify};

use crate::common::*;

both_engines!(
    events_commit_with_their_change,
    concurrent_appenders_keep_one_chain,
    search_by_term_kind_and_time,
    device_events_are_recorded_once,
    checkpoints_once_per_size,
);

async fn append(store: &Store, kind: &str, subject: &str, data: serde_json::Value, at: i64) {
    let mut tx = store.begin().await.unwrap();
    tx.audit(kind, "admin", subject, data, at).await.unwrap();
    tx.commit().await.unwrap();
}

async fn events_commit_with_their_change(store: Store) {
    append(
        &store,
        "user.created",
        "alice",
        json!({"groups": []}),
        1_800_000_000,
    )
    .await;
    // A dropped transaction takes its change and its event with it.
    let mut tx = store.begin().await.unwrap();
    tx.set_meta("k", "v").await.unwrap();
    tx.audit("user.created", "admin", "bob", json!({}), 1_800_000_001)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(store.audit_size().await.unwrap(), 1);
    assert_eq!(store.meta("k").await.unwrap(), None);
    // A bad event fails the action before anything is written.
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .audit("Not A Kind", "admin", "x", json!({}), 1_800_000_002)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err}");
    drop(tx);
    // Several events in one transaction, in order, with no gap after the rollback.
    let mut tx = store.begin().await.unwrap();
    for s in ["a", "b", "c"] {
        tx.audit(
            "device.added",
            "admin",
            s,
            json!({"tags": {}}),
            1_800_000_003,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let events = store.audit_events(0, 100).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.event.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(events[3].event.subject, "c");
    assert_eq!(events[0].event.at, "2027-01-15T08:00:00Z");
    let head = verify(&Head::GENESIS, &events).unwrap();
    assert_eq!(head.seq, 4);
    assert_eq!(store.audit_size().await.unwrap(), 4);
    assert_eq!(store.server_state().await.unwrap().1, 4);
    let leaves = store.audit_leaves(1, 2).await.unwrap();
    assert_eq!(
        leaves,
        [
            (2, events[1].leaf_hash.clone()),
            (3, events[2].leaf_hash.clone())
        ]
    );
    assert_eq!(store.audit_event(2).await.unwrap().unwrap(), events[1]);
    assert_eq!(store.audit_event(9).await.unwrap(), None);
    assert_eq!(store.audit_events(3, 100).await.unwrap().len(), 1);
}

async fn concurrent_appenders_keep_one_chain(store: Store) {
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let mut tx = store.begin().await.unwrap();
                    tx.audit(
                        "grant.used",
                        "device:web-01",
                        &format!("g{w}"),
                        json!({"i": i}),
                        1_800_000_000,
                    )
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.audit_events(0, 1000).await.unwrap();
    assert_eq!(events.len(), 40);
    assert_eq!(verify(&Head::GENESIS, &events).unwrap().seq, 40);
}

async fn search_by_term_kind_and_time(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1000).await;
    // The event names only the grant; its holder, device and ticket come from the grant row.
    append(
        &store,
        "grant.used",
        "g1",
        json!({"command": "/usr/bin/id"}),
        1_800_000_000,
    )
    .await;
    append(&store, "user.created", "bob", json!({}), 1_800_000_100).await;
    append(&store, "device.added", "web-01", json!({}), 1_800_000_200).await;
    let find = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit_search(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.event.seq)
                .collect::<Vec<u64>>()
        }
    };
    let terms = |groups: &[&[&str]]| -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|t| t.to_string()).collect())
            .collect()
    };
    let base = AuditFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        find(AuditFilter {
            terms: terms(&[&["user:alice"]]),
            ..base.clone()
        })
        .await,
        [1]
    );
    assert_eq!(
        find(AuditFilter {
            terms: terms(&[&["ticket:CHG-r1"]]),
            ..base.clone()
        })
        .await,
        [1]
    );
    assert_eq!(
        find(AuditFilter {
            terms: terms(&[&["device:web-01"]]),
            ..base.clone()
        })
        .await,
        [1, 3]
    );
    // Groups are ANDed, terms within a group ORed.
    assert_eq!(
        find(AuditFilter {
            terms: terms(&[&["device:web-01"], &["user:alice", "user:bob"]]),
            ..base.clone()
        })
        .await,
        [1]
    );
    assert_eq!(
        find(AuditFilter {
            kind: Some("user.created".into()),
            ..base.clone()
        })
        .await,
        [2]
    );
    assert_eq!(
        find(AuditFilter {
            since: Some("2027-01-15T08:01:40Z".into()),
            ..base.clone()
        })
        .await,
        [2, 3]
    );
    assert_eq!(
        find(AuditFilter {
            after: 1,
            limit: 1,
            ..base.clone()
        })
        .await,
        [2]
    );
}

async fn device_events_are_recorded_once(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1000).await;
    let record = |id: &str| DeviceEventRecord {
        id: id.into(),
        device: "web-01".into(),
        grant_id: "g1".into(),
        recorded_at: 1_800_000_000,
    };
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.device_event_recorded("e1").await.unwrap());
    tx.audit_device_event("grant.used", "device:web-01", "g1", json!({}), record("e1"))
        .await
        .unwrap();
    assert!(
        tx.device_event_recorded("e1").await.unwrap(),
        "drafted in this transaction"
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.device_event_recorded("e1").await.unwrap());
    assert!(!tx.device_event_recorded("e2").await.unwrap());
    // Recording it again (a race between replicas) fails the whole transaction.
    tx.audit_device_event("grant.used", "device:web-01", "g1", json!({}), record("e1"))
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert_eq!(store.audit_size().await.unwrap(), 1);
}

fn checkpoint(size: u64, root: &str) -> Checkpoint {
    Checkpoint {
        size,
        root: root.into(),
        at: "2027-01-15T08:00:00Z".into(),
        signature: format!("sig-{size}"),
    }
}

async fn checkpoints_once_per_size(store: Store) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    assert!(
        store
            .insert_checkpoint(&checkpoint(5, "r5"), "front5", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_checkpoint(&checkpoint(5, "other"), "x", None)
            .await
            .unwrap(),
        "the first checkpoint of a size is the only one"
    );
    assert!(
        store
            .insert_checkpoint(&checkpoint(9, "r9"), "front9", Some(5))
            .await
            .unwrap()
    );
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(
        latest,
        StoredCheckpoint {
            checkpoint: checkpoint(9, "r9"),
            frontier: "front9".into()
        }
    );
    assert_eq!(
        store.checkpoint(5).await.unwrap(),
        Some(checkpoint(5, "r5"))
    );
    assert_eq!(store.checkpoint(6).await.unwrap(), None);
    assert_eq!(store.checkpoint_count().await.unwrap(), 2);
}
