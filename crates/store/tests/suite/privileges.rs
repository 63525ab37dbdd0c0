//! Privilege changes under the two-person rule: they move only from their current state, and
//! the open ones (pending, unconfirmed) are found per person.

use crate::common::*;

both_engines!(privilege_changes_move_once);

fn change(id: &str, user: &str, state: PrivilegeState, at: i64) -> PrivilegeRecord {
    PrivilegeRecord {
        id: id.into(),
        user: user.into(),
        group: Some("approvers".into()),
        state,
        requested_by: "admin".into(),
        requested_at: at,
        decided_by: None,
        decided_at: None,
        reason: None,
    }
}

async fn privilege_changes_move_once(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_privilege_change(&change("p1", "alice", PrivilegeState::Pending, 100))
        .await
        .unwrap();
    tx.insert_privilege_change(&change("p2", "alice", PrivilegeState::Unconfirmed, 200))
        .await
        .unwrap();
    tx.insert_privilege_change(&change("p3", "bob", PrivilegeState::Pending, 300))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let open = store.open_privilege_changes("alice").await.unwrap();
    assert_eq!(ids(&open, |p| &p.id), ["p1", "p2"]);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.lock_privilege_change("p1").await.unwrap().unwrap(),
        change("p1", "alice", PrivilegeState::Pending, 100)
    );
    assert!(
        !tx.decide_privilege_change(
            "p1",
            PrivilegeState::Unconfirmed,
            PrivilegeState::Confirmed,
            "carol",
            400,
            None
        )
        .await
        .unwrap(),
        "p1 is pending, not unconfirmed"
    );
    assert!(
        tx.decide_privilege_change(
            "p1",
            PrivilegeState::Pending,
            PrivilegeState::Rejected,
            "carol",
            400,
            Some("not needed")
        )
        .await
        .unwrap()
    );
    assert!(
        tx.decide_privilege_change(
            "p2",
            PrivilegeState::Unconfirmed,
            PrivilegeState::Confirmed,
            "carol",
            410,
            None
        )
        .await
        .unwrap()
    );
    assert!(
        tx.lock_open_privilege_changes("alice")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&tx.lock_open_privilege_changes("bob").await.unwrap(), |p| {
            &p.id
        }),
        ["p3"]
    );
    tx.commit().await.unwrap();

    let p1 = store.privilege_change("p1").await.unwrap().unwrap();
    assert_eq!(
        (
            p1.state,
            p1.decided_by.as_deref(),
            p1.decided_at,
            p1.reason.as_deref()
        ),
        (
            PrivilegeState::Rejected,
            Some("carol"),
            Some(400),
            Some("not needed")
        )
    );
    assert!(!p1.state.is_open());
    assert_eq!(store.privilege_change("p9").await.unwrap(), None);
    let all = store.privilege_changes(None, 10).await.unwrap();
    assert_eq!(ids(&all, |p| &p.id), ["p3", "p2", "p1"], "newest first");
    let pending = store
        .privilege_changes(Some(PrivilegeState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(ids(&pending, |p| &p.id), ["p3"]);
    assert_eq!(store.privilege_changes(None, 1).await.unwrap().len(), 1);
}
