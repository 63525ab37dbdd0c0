//! The grant lifecycle and the queries over live grants; delivery and the device's
//! acknowledgements.

use crate::common::*;

both_engines!(
    grant_lifecycle,
    live_grant_queries,
    one_grant_per_request,
    due_grants_are_claimed_once,
    delivery_and_acknowledgements,
    unconfirmed_removals,
);

async fn grant_lifecycle(store: Store) {
    let doc = add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1900).await;
    let g = store.grant("g1").await.unwrap().unwrap();
    assert_eq!(g.state, GrantState::Issued);
    assert_eq!(g.doc, doc);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&g.signed.doc).unwrap()["grant_id"],
        "g1"
    );
    assert_eq!(g.signed.sig, "sig-g1");
    assert_eq!((g.not_before, g.not_after, g.issued_at), (100, 1900, 100));
    assert_eq!(
        store
            .request("r1")
            .await
            .unwrap()
            .unwrap()
            .grant_id
            .as_deref(),
        Some("g1")
    );

    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.set_grant_applied("g1", 110).await.unwrap(),
        "issued becomes active"
    );
    assert!(
        !tx.set_grant_applied("g1", 120).await.unwrap(),
        "recorded once"
    );
    assert_eq!(
        tx.lock_grant("g1").await.unwrap().unwrap().state,
        GrantState::Active
    );
    assert!(
        tx.end_grant("g1", GrantState::Completed, 130, "task done", "alice")
            .await
            .unwrap()
    );
    assert!(
        !tx.end_grant("g1", GrantState::Revoked, 140, "too late", "bob")
            .await
            .unwrap(),
        "an ended grant does not end again"
    );
    tx.commit().await.unwrap();

    let g = store.grant("g1").await.unwrap().unwrap();
    assert_eq!(g.state, GrantState::Completed);
    assert_eq!(
        (
            g.applied_at,
            g.ended_at,
            g.end_reason.as_deref(),
            g.ended_by.as_deref()
        ),
        (Some(110), Some(130), Some("task done"), Some("alice"))
    );
    // Applied after it ended: recorded, but the state stays ended.
    add_grant(&store, "g2", "r2", "alice", "web-01", 200, 2000).await;
    let mut tx = store.begin().await.unwrap();
    tx.end_grant("g2", GrantState::Revoked, 210, "no", "bob")
        .await
        .unwrap();
    assert!(tx.set_grant_applied("g2", 220).await.unwrap());
    tx.commit().await.unwrap();
    let g2 = store.grant("g2").await.unwrap().unwrap();
    assert_eq!((g2.state, g2.applied_at), (GrantState::Revoked, Some(220)));
}

async fn live_grant_queries(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1000).await;
    add_grant(&store, "g2", "r2", "alice", "web-02", 200, 900).await;
    add_grant(&store, "g3", "r3", "bob", "web-01", 300, 800).await;
    add_grant(&store, "g4", "r4", "bob", "web-02", 400, 700).await;
    let mut tx = store.begin().await.unwrap();
    tx.set_grant_applied("g2", 250).await.unwrap();
    tx.end_grant("g4", GrantState::Revoked, 450, "no", "admin")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.live_grant_count().await.unwrap(), 3);
    assert_eq!(store.next_grant_expiry().await.unwrap(), Some(800));
    let all = store.grants(&GrantFilter::default()).await.unwrap();
    assert_eq!(
        ids(&all, |g| &g.id),
        ["g4", "g3", "g2", "g1"],
        "newest first"
    );
    let live = GrantFilter {
        live: true,
        ..Default::default()
    };
    assert_eq!(
        ids(&store.grants(&live).await.unwrap(), |g| &g.id),
        ["g3", "g2", "g1"]
    );
    let alice_web01 = GrantFilter {
        device: Some("web-01".into()),
        user: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.grants(&alice_web01).await.unwrap(), |g| &g.id),
        ["g1"]
    );
    let on_web02 = store.device_grants("web-02").await.unwrap();
    assert_eq!(
        ids(&on_web02, |g| &g.id),
        ["g2"],
        "the revoked g4 is not sent"
    );
    assert_eq!(on_web02[0].state, GrantState::Active);
    assert_eq!(on_web02[0].user, "alice");

    let mut tx = store.begin().await.unwrap();
    let of_alice = tx.lock_live_grants(Holder::User("alice")).await.unwrap();
    assert_eq!(ids(&of_alice, |g| &g.id), ["g1", "g2"]);
    let on_web01 = tx.lock_live_grants(Holder::Device("web-01")).await.unwrap();
    assert_eq!(ids(&on_web01, |g| &g.id), ["g1", "g3"]);
    tx.commit().await.unwrap();

    // Once all have ended nothing is live.
    let mut tx = store.begin().await.unwrap();
    for id in ["g1", "g2", "g3"] {
        tx.end_grant(
            id,
            GrantState::Expired,
            2000,
            "not_after reached",
            "brevetd",
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.live_grant_count().await.unwrap(), 0);
    assert_eq!(store.next_grant_expiry().await.unwrap(), None);
    assert!(store.device_grants("web-01").await.unwrap().is_empty());
}

async fn one_grant_per_request(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1000).await;
    let doc = grant_doc("g2", "r1", "alice", "web-01");
    let signed = brevet_proto::grant::SignedGrant {
        doc: serde_json::to_string(&doc).unwrap(),
        sig: "s".into(),
    };
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_grant(&NewGrant {
            doc: &doc,
            signed: &signed,
            not_before: 100,
            not_after: 1000,
            issued_at: 100,
        })
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn due_grants_are_claimed_once(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 500).await;
    add_grant(&store, "g2", "r2", "alice", "web-01", 100, 400).await;
    add_grant(&store, "g3", "r3", "bob", "web-02", 100, 5000).await;
    let mut tx = store.begin().await.unwrap();
    let due = tx.due_grants(600, 10).await.unwrap();
    assert_eq!(
        due,
        [
            ("g2".to_owned(), 400, "web-01".to_owned()),
            ("g1".to_owned(), 500, "web-01".to_owned())
        ],
        "oldest first, not g3"
    );
    if store.engine() == Engine::Postgres {
        // Another replica's sweep passes over the rows this one holds.
        let mut other = store.begin().await.unwrap();
        assert!(other.due_grants(600, 10).await.unwrap().is_empty());
        drop(other);
    }
    for (id, _, _) in &due {
        assert!(
            tx.end_grant(id, GrantState::Expired, 600, "not_after reached", "brevetd")
                .await
                .unwrap()
        );
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.due_grants(600, 10).await.unwrap().is_empty());
}

async fn delivery_and_acknowledgements(store: Store) {
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 1000).await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.mark_delivered("g1", 105).await.unwrap());
    assert!(
        !tx.mark_delivered("g1", 106).await.unwrap(),
        "first delivery only"
    );
    tx.commit().await.unwrap();
    assert!(store.device_grants("web-01").await.unwrap()[0].delivered);

    let mut tx = store.begin().await.unwrap();
    let t = tx.lock_ack_target("g1").await.unwrap().unwrap();
    assert_eq!(
        t,
        AckTarget {
            device: "web-01".into(),
            user: "alice".into(),
            request_id: "r1".into(),
            state: GrantState::Issued,
            applied_at: None,
            revocation_confirmed_at: None,
        }
    );
    assert_eq!(tx.lock_ack_target("nope").await.unwrap(), None);
    tx.set_grant_applied("g1", 110).await.unwrap();
    tx.end_grant("g1", GrantState::Revoked, 120, "no", "bob")
        .await
        .unwrap();
    assert!(tx.confirm_grant_removed("g1", 125).await.unwrap());
    assert!(
        !tx.confirm_grant_removed("g1", 126).await.unwrap(),
        "confirmed once"
    );
    assert!(
        tx.record_rejection("web-01", "gx", "2026-11-28T10:00:00Z", 130)
            .await
            .unwrap()
    );
    assert!(
        !tx.record_rejection("web-01", "gx", "2026-11-28T10:00:00Z", 131)
            .await
            .unwrap(),
        "the same rejection sent again"
    );
    assert!(
        tx.record_rejection("web-01", "gx", "2026-11-28T10:00:01Z", 132)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let g = store.grant("g1").await.unwrap().unwrap();
    assert_eq!(
        (g.delivered_at, g.applied_at, g.revocation_confirmed_at),
        (Some(105), Some(110), Some(125))
    );
}

async fn unconfirmed_removals(store: Store) {
    for (id, rq) in [("g1", "r1"), ("g2", "r2"), ("g3", "r3"), ("g4", "r4")] {
        add_grant(&store, id, rq, "alice", "web-01", 100, 1000).await;
    }
    let mut tx = store.begin().await.unwrap();
    for (id, ended) in [("g1", 200), ("g2", 210), ("g3", 220), ("g4", 300)] {
        tx.end_grant(id, GrantState::Revoked, ended, "no", "bob")
            .await
            .unwrap();
    }
    for id in ["g1", "g3", "g4"] {
        tx.mark_delivered(id, 150).await.unwrap();
    }
    tx.confirm_grant_removed("g3", 230).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    // g2 was never delivered, g3 is confirmed, g4 ended after the cut-off.
    let found = tx.unconfirmed_removals(260, 10).await.unwrap();
    assert_eq!(
        found,
        [Unconfirmed {
            id: "g1".into(),
            device: "web-01".into(),
            user: "alice".into(),
            state: GrantState::Revoked,
            ended_at: 200,
            delivered_at: 150,
        }]
    );
    assert!(tx.mark_alert_raised("g1", 261).await.unwrap());
    assert!(
        !tx.mark_alert_raised("g1", 262).await.unwrap(),
        "raised once"
    );
    assert!(tx.unconfirmed_removals(260, 10).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    assert_eq!(
        store.grant("g1").await.unwrap().unwrap().alert_raised_at,
        Some(261)
    );
}
