//! Devices, enrollment tokens, device certificates (current and superseded), reports.

use brevet_proto::agent::{Finding, Severity};

use crate::common::*;

both_engines!(
    devices_are_stored_and_listed,
    enrollment_tokens_are_used_once,
    superseded_certificates,
    the_latest_report_replaces_the_previous,
);

async fn devices_are_stored_and_listed(store: Store) {
    add_device(&store, "web-02").await;
    add_device(&store, "web-01").await;
    let d = store.device("web-01").await.unwrap().unwrap();
    assert_eq!(d, device_record("web-01", 20));
    assert_eq!(store.device("db-01").await.unwrap(), None);
    assert_eq!(
        ids(&store.devices().await.unwrap(), |d| &d.name),
        ["web-01", "web-02"]
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.set_device_enabled("web-01", false).await.unwrap());
    assert!(!tx.set_device_enabled("db-01", false).await.unwrap());
    tx.commit().await.unwrap();
    assert!(!store.device("web-01").await.unwrap().unwrap().enabled);
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_device(&device_record("web-02", 30))
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn enrollment_tokens_are_used_once(store: Store) {
    let day = 86_400;
    let mut tx = store.begin().await.unwrap();
    tx.insert_enroll_token("old", "web-09", 0, 3600)
        .await
        .unwrap();
    tx.insert_enroll_token("t1", "web-01", 10 * day, 10 * day + 3600)
        .await
        .unwrap();
    tx.insert_enroll_token("t2", "web-01", 10 * day, 10 * day + 3600)
        .await
        .unwrap();
    tx.insert_enroll_token("t3", "web-02", 10 * day, 10 * day + 3600)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.enroll_token("old").await.unwrap(),
        None,
        "tokens long past their expiry are deleted when a new one is made"
    );
    let t1 = store.enroll_token("t1").await.unwrap().unwrap();
    assert_eq!(
        t1,
        EnrollTokenRecord {
            device: "web-01".into(),
            created_at: 10 * day,
            expires_at: 10 * day + 3600,
            used_at: None
        }
    );

    let mut tx = store.begin().await.unwrap();
    assert!(tx.use_enroll_token("t1", 10 * day + 60).await.unwrap());
    assert!(
        !tx.use_enroll_token("t1", 10 * day + 61).await.unwrap(),
        "used once"
    );
    assert!(
        !tx.use_enroll_token("t3", 10 * day + 3600).await.unwrap(),
        "expired at its expiry"
    );
    assert!(!tx.use_enroll_token("nope", 10 * day).await.unwrap());
    // A new token for web-01 replaces the unused ones, not the used one.
    assert_eq!(tx.invalidate_enroll_tokens("web-01").await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(store.enroll_token("t2").await.unwrap(), None);
    assert_eq!(
        store.enroll_token("t1").await.unwrap().unwrap().used_at,
        Some(10 * day + 60)
    );
}

async fn superseded_certificates(store: Store) {
    add_device(&store, "web-01").await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.current_device_cert("web-01").await.unwrap(), None);
    tx.replace_device_cert("web-01", "fp1", 1000, 100, Superseded::Enrollment)
        .await
        .unwrap();
    tx.replace_device_cert("web-01", "fp2", 2000, 500, Superseded::Renewal)
        .await
        .unwrap();
    assert_eq!(
        tx.current_device_cert("web-01").await.unwrap(),
        Some(("fp2".to_owned(), 2000))
    );
    tx.commit().await.unwrap();
    let status = |fp: &'static str| {
        let store = store.clone();
        async move { store.device_cert(fp).await.unwrap() }
    };
    assert_eq!(
        status("fp1").await,
        Some(DeviceCertStatus {
            device: "web-01".into(),
            not_after: 1000,
            enabled: true,
            superseded_by: Some(Superseded::Renewal),
        })
    );
    assert_eq!(status("fp2").await.unwrap().superseded_by, None);

    // Another enrollment of the name supersedes fp2; fp1 (expired by then) is dropped.
    let mut tx = store.begin().await.unwrap();
    tx.replace_device_cert("web-01", "fp3", 3000, 1500, Superseded::Enrollment)
        .await
        .unwrap();
    tx.set_device_enabled("web-01", false).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(status("fp1").await, None);
    let fp2 = status("fp2").await.unwrap();
    assert_eq!(
        (fp2.superseded_by, fp2.enabled),
        (Some(Superseded::Enrollment), false)
    );
    assert_eq!(status("fp3").await.unwrap().superseded_by, None);
    assert_eq!(status("unknown").await, None);

    // A certificate of a device with no row is not enabled.
    let mut tx = store.begin().await.unwrap();
    tx.replace_device_cert("ghost", "fpg", 3000, 1500, Superseded::Enrollment)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!status("fpg").await.unwrap().enabled);
}

fn finding(id: &str) -> Finding {
    Finding {
        id: id.into(),
        kind: "sudoers_rule".into(),
        severity: Severity::High,
        subject: "/etc/sudoers.d/extra".into(),
        detail: "a rule Brevet did not write".into(),
        remediation: "remove it".into(),
    }
}

async fn the_latest_report_replaces_the_previous(store: Store) {
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.device_report("web-01").await.unwrap(), None);
    for (at, drift) in [(100, "d1"), (200, "d2")] {
        tx.replace_device_report(&NewReport {
            device: "web-01",
            reported_at: at,
            agent_time: "2026-11-28T10:00:00Z",
            findings: &[finding("f1")],
            drift: &[finding(drift)],
        })
        .await
        .unwrap();
    }
    tx.replace_device_report(&NewReport {
        device: "web-02",
        reported_at: 150,
        agent_time: "2026-11-28T10:00:00Z",
        findings: &[],
        drift: &[],
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let all = store.device_reports(None).await.unwrap();
    assert_eq!(ids(&all, |r| &r.device), ["web-01", "web-02"]);
    assert_eq!(
        all[0],
        ReportRecord {
            device: "web-01".into(),
            reported_at: 200,
            agent_time: "2026-11-28T10:00:00Z".into(),
            findings: vec![finding("f1")],
            drift: vec![finding("d2")],
        }
    );
    let one = store.device_reports(Some("web-02")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].findings.is_empty());
}
