//! What a restore from backup needs: the generation, named values, and the live grants and
//! pending requests from before a point in time.

use crate::common::*;

both_engines!(restore_generation_and_records_before);

async fn restore_generation_and_records_before(store: Store) {
    assert_eq!(
        store.server_state().await.unwrap(),
        (1, 0),
        "a new database"
    );
    add_grant(&store, "g1", "r1", "alice", "web-01", 100, 5000).await;
    add_grant(&store, "g2", "r2", "alice", "web-01", 200, 5000).await;
    add_grant(&store, "g3", "r3", "alice", "web-01", 300, 5000).await;
    add_request(&store, &new_request("r4", "bob", "web-01", 150)).await;
    add_request(&store, &new_request("r5", "bob", "web-01", 250)).await;

    let mut tx = store.begin().await.unwrap();
    tx.end_grant("g1", GrantState::Revoked, 210, "no", "bob")
        .await
        .unwrap();
    assert_eq!(tx.bump_restore_generation().await.unwrap(), 2);
    tx.set_meta("restore_pending", "{\"detected_at\":220}")
        .await
        .unwrap();
    let grants = tx.lock_live_grants_issued_before(220).await.unwrap();
    assert_eq!(ids(&grants, |g| &g.id), ["g2"], "live and issued by then");
    let requests = tx.lock_pending_requests_created_before(220).await.unwrap();
    assert_eq!(
        ids(&requests, |r| &r.id),
        ["r4"],
        "pending and created by then"
    );
    tx.commit().await.unwrap();

    assert_eq!(store.server_state().await.unwrap().0, 2);
    assert_eq!(
        store.meta("restore_pending").await.unwrap().as_deref(),
        Some("{\"detected_at\":220}")
    );
    let mut tx = store.begin().await.unwrap();
    tx.delete_meta("restore_pending").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.meta("restore_pending").await.unwrap(), None);
}
