//! People: accounts, groups, once-only TOTP steps, sessions, login throttling.

use crate::common::*;

both_engines!(
    accounts_and_groups,
    totp_steps_are_used_once,
    sessions_and_revocation,
    throttle_counters,
    concurrent_failures_are_all_counted,
    unknown_names_and_storms,
);

async fn accounts_and_groups(store: Store) {
    add_user(&store, "bob", &[]).await;
    add_user(&store, "alice", &["operators", "approvers"]).await;
    let alice = store.user("alice").await.unwrap().unwrap();
    assert_eq!(alice.groups, ["approvers", "operators"], "sorted by name");
    assert_eq!(alice.password_hash, "hash-of-alice");
    assert_eq!(store.user("carol").await.unwrap(), None);
    assert_eq!(
        ids(&store.users().await.unwrap(), |u| &u.name),
        ["alice", "bob"]
    );
    assert_eq!(store.user_count().await.unwrap(), 2);

    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.add_user_group("alice", "operators").await.unwrap(),
        "already a member"
    );
    assert!(tx.add_user_group("bob", "breakglass").await.unwrap());
    assert!(tx.remove_user_group("alice", "approvers").await.unwrap());
    assert!(!tx.remove_user_group("alice", "approvers").await.unwrap());
    assert!(tx.set_user_enabled("bob", false).await.unwrap());
    assert!(
        !tx.set_user_enabled("carol", false).await.unwrap(),
        "no such user"
    );
    assert!(tx.set_password_hash("alice", "new-hash").await.unwrap());
    assert!(
        !tx.replace_totp_secret("alice", "WRONG", "SEALED")
            .await
            .unwrap()
    );
    assert!(
        tx.replace_totp_secret("alice", "SECRET", "SEALED")
            .await
            .unwrap()
    );
    // The transaction reads its own writes.
    assert_eq!(
        tx.user("bob").await.unwrap().unwrap().groups,
        ["breakglass"]
    );
    tx.commit().await.unwrap();

    let alice = store.user("alice").await.unwrap().unwrap();
    assert_eq!(alice.groups, ["operators"]);
    assert_eq!(
        (alice.password_hash.as_str(), alice.totp_secret.as_str()),
        ("new-hash", "SEALED")
    );
    assert!(!store.user("bob").await.unwrap().unwrap().enabled);

    // A dropped transaction leaves nothing.
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&UserRecord {
        name: "carol".into(),
        password_hash: "h".into(),
        totp_secret: "S".into(),
        totp_last_step: None,
        enabled: true,
        groups: vec!["operators".into()],
        created_at: 1,
    })
    .await
    .unwrap();
    drop(tx);
    assert_eq!(store.user("carol").await.unwrap(), None);

    // A name is taken once.
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_user(&store.user("alice").await.unwrap().unwrap())
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn totp_steps_are_used_once(store: Store) {
    add_user(&store, "alice", &[]).await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.use_totp_step("alice", 100).await.unwrap());
    assert!(
        !tx.use_totp_step("alice", 100).await.unwrap(),
        "the same code again"
    );
    assert!(
        !tx.use_totp_step("alice", 99).await.unwrap(),
        "an older code"
    );
    assert!(tx.use_totp_step("alice", 101).await.unwrap());
    assert!(!tx.use_totp_step("nobody", 5).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        store.user("alice").await.unwrap().unwrap().totp_last_step,
        Some(101)
    );
}

async fn sessions_and_revocation(store: Store) {
    add_user(&store, "alice", &[]).await;
    let mut tx = store.begin().await.unwrap();
    for (hash, created) in [("t1", 100), ("t2", 200), ("t3", 300)] {
        let s = SessionRecord {
            user: "alice".into(),
            created_at: created,
            expires_at: created + 28_800,
            mfa_at: Some(created),
            revoked: false,
        };
        tx.insert_session(hash, &s).await.unwrap();
    }
    tx.commit().await.unwrap();
    let s = store.session("t2").await.unwrap().unwrap();
    assert_eq!(
        s,
        SessionRecord {
            user: "alice".into(),
            created_at: 200,
            expires_at: 29_000,
            mfa_at: Some(200),
            revoked: false
        }
    );
    assert_eq!(store.session("nope").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    tx.set_session_mfa("t2", 250).await.unwrap();
    assert!(tx.revoke_session("t1", 260).await.unwrap());
    assert!(
        !tx.revoke_session("t1", 270).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        tx.revoke_user_sessions("alice", 280).await.unwrap(),
        2,
        "only the sessions still open"
    );
    tx.commit().await.unwrap();
    let s = store.session("t2").await.unwrap().unwrap();
    assert_eq!((s.mfa_at, s.revoked), (Some(250), true));
    assert!(store.session("t3").await.unwrap().unwrap().revoked);
}

async fn throttle_counters(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let key = "acct:alice@10.0.0.1";
    for (now, expect) in [(100, 1), (110, 2), (120, 3)] {
        let n = tx
            .count_failure(key, Some("alice"), Some("10.0.0.1"), now, now - 900)
            .await
            .unwrap();
        assert_eq!(n, expect);
    }
    // A failure long after the last one starts again.
    let n = tx
        .count_failure(key, Some("alice"), Some("10.0.0.1"), 5000, 5000 - 900)
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.block(key, 5060, 5000).await.unwrap();
    tx.count_failure("src:10.0.0.2", None, Some("10.0.0.2"), 5000, 4100)
        .await
        .unwrap();
    tx.block("src:10.0.0.2", 5030, 5001).await.unwrap();
    tx.count_failure("acct:bob@10.0.0.3", Some("bob"), Some("10.0.0.3"), 10, 0)
        .await
        .unwrap();
    let counts = tx.throttled_since(4900).await.unwrap();
    assert_eq!(
        counts,
        ThrottledCounts {
            accounts: 1,
            sources: 2,
            sample: vec!["alice".into()]
        }
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.throttle_state(key).await.unwrap(),
        Some(ThrottleState {
            failures: 1,
            last_failure: 5000,
            blocked_until: 5060
        })
    );

    let mut tx = store.begin().await.unwrap();
    // Bob's key is stale and not blocked: pruned. Alice's is blocked until 5060: kept.
    tx.prune_throttle(4000, 5010, 0).await.unwrap();
    assert_eq!(tx.throttle_state("acct:bob@10.0.0.3").await.unwrap(), None);
    assert!(tx.throttle_state(key).await.unwrap().is_some());
    assert_eq!(tx.clear_login_failures("alice").await.unwrap(), 1);
    tx.clear_throttle("src:10.0.0.2").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.throttle_state(key).await.unwrap(), None);
    assert_eq!(store.throttle_state("src:10.0.0.2").await.unwrap(), None);
}

async fn concurrent_failures_are_all_counted(store: Store) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let n = tx
                    .count_failure("src:1.2.3.4", None, Some("1.2.3.4"), 100, 0)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                n
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort();
    assert_eq!(
        seen,
        (1..=8).collect::<Vec<i64>>(),
        "each failure saw its own count"
    );
    assert_eq!(
        store
            .throttle_state("src:1.2.3.4")
            .await
            .unwrap()
            .unwrap()
            .failures,
        8
    );
}

async fn unknown_names_and_storms(store: Store) {
    let mut tx = store.begin().await.unwrap();
    for (bucket, source) in [(1, "a"), (1, "a"), (1, "b"), (2, "a"), (3, "c")] {
        tx.count_unknown_login(bucket, source).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert!(store.unknown_logins_before(3).await.unwrap());
    assert!(!store.unknown_logins_before(1).await.unwrap());

    let mut tx = store.begin().await.unwrap();
    let taken = tx.take_unknown_logins(3).await.unwrap();
    assert_eq!(
        taken,
        [
            (1, "a".to_owned(), 2),
            (1, "b".to_owned(), 1),
            (2, "a".to_owned(), 1)
        ]
    );
    assert!(
        tx.take_unknown_logins(3).await.unwrap().is_empty(),
        "taken once"
    );
    let counts = ThrottledCounts {
        accounts: 3,
        sources: 4,
        sample: Vec::new(),
    };
    assert!(tx.claim_storm_alert(7, &counts).await.unwrap());
    assert!(
        !tx.claim_storm_alert(7, &counts).await.unwrap(),
        "raised once"
    );
    tx.prune_throttle(0, 0, 8).await.unwrap();
    assert!(
        tx.claim_storm_alert(7, &counts).await.unwrap(),
        "pruned marks go"
    );
    tx.commit().await.unwrap();
    assert!(!store.unknown_logins_before(3).await.unwrap());
    assert!(
        store.unknown_logins_before(4).await.unwrap(),
        "bucket 3 stays"
    );
}
