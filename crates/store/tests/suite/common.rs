//! Shared fixtures: a store on a scratch database, and people, devices, requests and grants
//! written the way the server writes them.

use std::future::Future;

pub use brevet_proto::api::{GrantState, RequestState};
use brevet_proto::grant::{GrantDoc, GrantKind, SignedGrant};
pub use brevet_store::*;
pub use brevet_testkit::{DbEngine, ScratchDb};
pub use serde_json::json;

/// Runs `body` with a store opened on a new scratch database on `engine`.
pub fn on<F, Fut>(engine: DbEngine, test: &str, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = ScratchDb::start(engine, test) else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = Store::open(db.url()).await.expect("open the store");
            body(store.clone()).await;
            store.close().await;
        });
}

/// For each `async fn NAME(store: Store)` named, the tests `NAME::sqlite` and
/// `NAME::postgres`.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                $crate::common::on(
                    $crate::common::DbEngine::Sqlite,
                    concat!(stringify!($name), "::sqlite"),
                    super::$name,
                );
            }
            #[test]
            fn postgres() {
                $crate::common::on(
                    $crate::common::DbEngine::Postgres,
                    concat!(stringify!($name), "::postgres"),
                    super::$name,
                );
            }
        }
    )*};
}

pub async fn add_user(store: &Store, name: &str, groups: &[&str]) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&UserRecord {
        name: name.into(),
        password_hash: format!("hash-of-{name}"),
        totp_secret: "SECRET".into(),
        totp_last_step: None,
        enabled: true,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        created_at: 10,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

pub fn device_record(name: &str, created_at: i64) -> DeviceRecord {
    DeviceRecord {
        name: name.into(),
        tags: [("env".to_owned(), "prod".to_owned())].into(),
        groups: vec!["web".into()],
        os: "linux".into(),
        enabled: true,
        created_at,
    }
}

pub async fn add_device(store: &Store, name: &str) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_device(&device_record(name, 20)).await.unwrap();
    tx.commit().await.unwrap();
}

pub fn new_request(id: &str, user: &str, device: &str, created_at: i64) -> NewRequest {
    NewRequest {
        id: id.into(),
        state: RequestState::Pending,
        user: user.into(),
        device: device.into(),
        role: "pkg-update".into(),
        duration_seconds: 1800,
        ticket: Some(format!("CHG-{id}")),
        reason: "patch the box".into(),
        start_at: None,
        created_at,
        expires_at: created_at + 3600,
        decided_at: None,
        approvals_required: 1,
        decision: json!({"outcome": "pending", "policies": ["p0"], "explain": "needs one"}),
    }
}

pub async fn add_request(store: &Store, r: &NewRequest) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_request(r).await.unwrap();
    tx.commit().await.unwrap();
}

pub fn grant_doc(id: &str, request: &str, user: &str, device: &str) -> GrantDoc {
    GrantDoc {
        v: 1,
        grant_id: id.into(),
        request_id: request.into(),
        device: device.into(),
        user: user.into(),
        role: "pkg-update".into(),
        runas: "root".into(),
        commands: vec!["/usr/bin/apt-get update".into()],
        groups: Vec::new(),
        not_before: "2026-11-28T10:00:00Z".into(),
        not_after: "2026-11-28T10:30:00Z".into(),
        ticket: Some(format!("CHG-{request}")),
        approvers: vec!["bob".into()],
        issued_at: "2026-11-28T10:00:00Z".into(),
        kind: GrantKind::Normal,
    }
}

/// Inserts request `rq` (approved) and its grant `id`, issued at `issued_at`, ending at
/// `not_after`, in one transaction as an approval does.
pub async fn add_grant(
    store: &Store,
    id: &str,
    rq: &str,
    user: &str,
    device: &str,
    issued_at: i64,
    not_after: i64,
) -> GrantDoc {
    let doc = grant_doc(id, rq, user, device);
    let signed = SignedGrant {
        doc: serde_json::to_string(&doc).unwrap(),
        sig: format!("sig-{id}"),
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_request(&new_request(rq, user, device, issued_at))
        .await
        .unwrap();
    tx.insert_grant(&NewGrant {
        doc: &doc,
        signed: &signed,
        not_before: issued_at,
        not_after,
        issued_at,
    })
    .await
    .unwrap();
    assert!(
        tx.set_request_state(
            rq,
            RequestState::Pending,
            RequestState::Approved,
            issued_at,
            Some(id)
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    doc
}

pub fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}
