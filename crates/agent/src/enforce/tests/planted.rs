//! What a holder of an ALL grant can plant in `/etc/sudoers.d` (a FIFO, a symlink, a huge file)
//! must not stop the agent: start-up, reconciliation and the scan finish and say what they found.
//! Each step runs on its own thread under a generous deadline, so a step that blocks (as a plain
//! `read` of a FIFO does) fails the test instead of hanging it.

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::scan::{self, Allowlist};

/// Runs `f` on a thread; panics if it does not finish within a minute.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within 60 s: it blocked on a planted file"),
    }
}

fn mkfifo(path: &Path) -> bool {
    let made = std::process::Command::new("/usr/bin/mkfifo")
        .arg(path)
        .status();
    let ok = matches!(made, Ok(s) if s.success());
    if !ok {
        eprintln!("SKIP planted FIFO test: `/usr/bin/mkfifo` is not available");
    }
    ok
}

#[test]
fn planted_fifos_links_and_huge_files_do_not_stop_the_agent() {
    let env = Env::new();
    drop(applied(&env));
    let d = env.root.sudoers_d();
    // The grant's own drop-in replaced by a FIFO, and foreign entries beside it.
    std::fs::remove_file(env.drop_in()).unwrap();
    if !mkfifo(&env.drop_in()) || !mkfifo(&d.join("zz-fifo")) {
        return;
    }
    let outside = env._tmp.path().join("secret");
    std::fs::write(&outside, "root:$6$secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, d.join("zz-link")).unwrap();
    let huge = std::fs::File::create(d.join("zz-huge")).unwrap();
    huge.set_len(64 << 20).unwrap(); // sparse: costs no disk
    drop(huge);

    // Start-up reconciles: it must finish, move the FIFO aside and put the real drop-in back.
    let (env, mut a) = within("start-up", move || {
        let mut a = env.agent_at(T0 + 60);
        a.startup().unwrap();
        (env, a)
    });
    let text = std::fs::read_to_string(env.drop_in()).unwrap();
    assert_eq!(text, crate::sudoers::render(&doc(), true).unwrap());
    assert_eq!(mode(&env.drop_in()), 0o440);
    let restored = a
        .pending_drift()
        .iter()
        .find(|f| f.id == format!("drift:drop-in:{ID}"))
        .unwrap_or_else(|| {
            panic!(
                "no finding for the replaced drop-in: {:?}",
                a.pending_drift()
            )
        });
    assert!(restored.detail.contains("FIFO"), "{}", restored.detail);
    assert!(restored.detail.contains("restored"), "{}", restored.detail);
    // The FIFO itself is kept as evidence.
    let q: Vec<_> = std::fs::read_dir(env.state.join("quarantine"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(q.len(), 1, "{q:?}");

    // A FIFO planted after the baseline is reported as drift by the next reconciliation.
    let d = env.root.sudoers_d();
    assert!(mkfifo(&d.join("zz-later")));
    let (a, env, report) = within("reconciliation", move || {
        let r = reconcile(&mut a).unwrap();
        (a, env, r)
    });
    let later = report
        .drift
        .iter()
        .find(|f| f.id == "drift:file:/etc/sudoers.d/zz-later")
        .unwrap_or_else(|| panic!("the new FIFO is not drift: {:?}", report.drift));
    assert_eq!(later.subject, "/etc/sudoers.d/zz-later");

    // The scan reports each of them as a file it could not read.
    let root = env.root.clone();
    let findings = within("scan", move || scan::scan(&root, &Allowlist::default()));
    let error = |name: &str| {
        findings
            .iter()
            .find(|f| f.id == format!("scan-error:/etc/sudoers.d/{name}"))
            .map(|f| f.detail.clone())
            .unwrap_or_else(|| panic!("no scan error for `{name}`: {findings:#?}"))
    };
    assert!(error("zz-fifo").contains("FIFO"), "{}", error("zz-fifo"));
    assert!(error("zz-later").contains("FIFO"));
    assert!(
        error("zz-huge").contains("larger than"),
        "{}",
        error("zz-huge")
    );
    assert!(error("zz-link").contains("outside"), "{}", error("zz-link"));
    // Expiry still works afterwards.
    let mut a = a;
    a.clock().set(NA);
    let acks = a.tick().unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("expired"));
    assert!(!env.drop_in().exists());
    drop(env);
}

#[test]
fn a_directory_or_link_in_place_of_a_drop_in_is_moved_aside_and_the_drop_in_restored() {
    let env = Env::new();
    let mut a = applied(&env);
    let want = std::fs::read_to_string(env.drop_in()).unwrap();
    for plant in ["dir", "link"] {
        std::fs::remove_file(env.drop_in()).unwrap();
        match plant {
            "dir" => std::fs::create_dir(env.drop_in()).unwrap(),
            _ => std::os::unix::fs::symlink("/etc/shadow", env.drop_in()).unwrap(),
        }
        let report = reconcile(&mut a).unwrap();
        assert_eq!(report.restored, [ID], "{plant}: {report:?}");
        assert_eq!(std::fs::read_to_string(env.drop_in()).unwrap(), want);
        assert!(std::fs::symlink_metadata(env.drop_in()).unwrap().is_file());
    }
    let moved = std::fs::read_dir(env.state.join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(moved, 2);
}
