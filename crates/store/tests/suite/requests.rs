//! Requests and their approvals: states move only from where they are, approvals count once,
//! listings filter and order, due requests are claimed.

use crate::common::*;

both_engines!(
    request_states_and_approvals,
    listings_filter_and_order,
    due_and_pending_requests,
);

async fn request_states_and_approvals(store: Store) {
    add_request(&store, &new_request("r1", "alice", "web-01", 100)).await;
    let r = store.request("r1").await.unwrap().unwrap();
    assert_eq!(r.state, RequestState::Pending);
    assert_eq!(
        (r.duration_seconds, r.expires_at, r.approvals_required),
        (1800, 3700, 1)
    );
    assert_eq!(r.decision["explain"], "needs one");
    assert!(r.approvals.is_empty());
    assert_eq!(store.request("r2").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    assert!(tx.add_approval("r1", "carol", 130).await.unwrap());
    assert!(tx.add_approval("r1", "bob", 120).await.unwrap());
    assert!(
        !tx.add_approval("r1", "bob", 140).await.unwrap(),
        "bob approved already"
    );
    // From the wrong state nothing moves.
    assert!(
        !tx.set_request_state(
            "r1",
            RequestState::Approved,
            RequestState::Denied,
            150,
            None
        )
        .await
        .unwrap()
    );
    assert!(
        tx.set_request_state("r1", RequestState::Pending, RequestState::Denied, 150, None)
            .await
            .unwrap()
    );
    let locked = tx.lock_request("r1").await.unwrap().unwrap();
    assert_eq!(locked.state, RequestState::Denied);
    tx.commit().await.unwrap();

    let r = store.request("r1").await.unwrap().unwrap();
    let approvals: Vec<(&str, i64)> = r
        .approvals
        .iter()
        .map(|a| (a.approver.as_str(), a.at))
        .collect();
    assert_eq!(approvals, [("bob", 120), ("carol", 130)], "oldest first");
    assert_eq!((r.state, r.decided_at), (RequestState::Denied, Some(150)));

    // The same id is taken once.
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_request(&new_request("r1", "alice", "web-01", 100))
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn listings_filter_and_order(store: Store) {
    for (id, user, at) in [
        ("r1", "alice", 100),
        ("r2", "bob", 200),
        ("r3", "alice", 300),
    ] {
        add_request(&store, &new_request(id, user, "web-01", at)).await;
    }
    let mut tx = store.begin().await.unwrap();
    tx.set_request_state(
        "r2",
        RequestState::Pending,
        RequestState::Cancelled,
        250,
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let all = store.requests(&RequestFilter::default()).await.unwrap();
    assert_eq!(ids(&all, |r| &r.id), ["r3", "r2", "r1"], "newest first");
    let pending = RequestFilter {
        state: Some(RequestState::Pending),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.requests(&pending).await.unwrap(), |r| &r.id),
        ["r3", "r1"]
    );
    let bobs = RequestFilter {
        user: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.requests(&bobs).await.unwrap(), |r| &r.id),
        ["r2"]
    );
    let one = RequestFilter {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(&store.requests(&one).await.unwrap(), |r| &r.id), ["r3"]);
    let mut counts = store.request_counts().await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [("cancelled".to_owned(), 1), ("pending".to_owned(), 2)]
    );
}

async fn due_and_pending_requests(store: Store) {
    // r1 expires at 3700, r2 at 3800 (created 100 later), r3 on another device and person.
    add_request(&store, &new_request("r1", "alice", "web-01", 100)).await;
    add_request(&store, &new_request("r2", "alice", "web-02", 200)).await;
    add_request(&store, &new_request("r3", "bob", "web-02", 300)).await;
    let mut tx = store.begin().await.unwrap();
    tx.set_request_state(
        "r1",
        RequestState::Pending,
        RequestState::Approved,
        150,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        tx.due_requests(3750, 10).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(tx.due_requests(3800, 10).await.unwrap(), ["r2"]);
    assert_eq!(tx.due_requests(4000, 10).await.unwrap(), ["r2", "r3"]);
    assert_eq!(tx.due_requests(4000, 1).await.unwrap(), ["r2"]);
    let of_alice = tx
        .lock_pending_requests(Holder::User("alice"))
        .await
        .unwrap();
    assert_eq!(ids(&of_alice, |r| &r.id), ["r2"]);
    let on_web02 = tx
        .lock_pending_requests(Holder::Device("web-02"))
        .await
        .unwrap();
    assert_eq!(ids(&on_web02, |r| &r.id), ["r2", "r3"]);
    tx.commit().await.unwrap();
}
