//! The integration-test harness: a real `brevetd` on a free port over real HTTPS, on SQLite or on
//! a throwaway PostgreSQL cluster, driven through the `brevet` client library.
//!
//! The server runs in-process (so a test can stop and restart it and move its clock), in its own
//! Tokio runtime; the test thread uses the blocking client, exactly as the CLI does.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod device;
pub mod ns;
pub mod sandbox;

use std::collections::HashMap;
use std::sync::Arc;

use brevet_cli::client::Client;
use brevet_identity::totp;
use brevet_proto::api::{AddDevice, CreateRequest, RequestView};
use brevet_server::clock::{Clock, OffsetClock};
use brevet_server::datadir::DataDir;
use brevet_server::serve::{self, Running};
use brevet_testkit::Postgres;

pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub clock: Arc<OffsetClock>,
    pub server: Option<Running>,
    pub ca_pem: String,
    pub url: String,
    server_port: Option<u16>,
    db_url: Option<String>,
    pg: Option<Postgres>,
    secrets: HashMap<String, Vec<u8>>,
    passwords: HashMap<String, String>,
    /// Last TOTP step used per user, so each login or step-up uses a fresh code.
    last_step: HashMap<String, u64>,
}

/// Extra roles the tests use beside those `init` writes.
const TEST_ROLES: &str = r#"
[roles.db-admin]
commands = ["/usr/bin/systemctl restart postgresql"]
max_duration = "4h"
approvals = 2
ticket = "required"

[roles.ops-group]
groups = ["brevetops"]
max_duration = "1h"
approvals = 1
ticket = "optional"

[roles.short]
commands = ["/usr/bin/id"]
max_duration = "1h"
approvals = 1
ticket = "optional"
"#;

impl Harness {
    /// Starts a server on `db`, or returns None (after printing why) when that engine is not
    /// available here.
    pub fn start(db: Db, test: &str) -> Option<Harness> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (pg, db_url) = match db {
            Db::Sqlite => (None, None),
            Db::Postgres => match Postgres::start() {
                Ok(Some(pg)) => {
                    let url = pg.url();
                    (Some(pg), Some(url))
                }
                Ok(None) => {
                    brevet_testkit::skip(
                        test,
                        "no PostgreSQL server binaries (initdb, pg_ctl) on this machine",
                    );
                    return None;
                }
                Err(e) => panic!("PostgreSQL failed to start: {e}"),
            },
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().join("data"));
        let db = db_url.as_deref().unwrap_or(brevet_server::db_url::DEFAULT);
        let out = rt
            .block_on(brevet_server::init::init_with_db(&data, "127.0.0.1:0", db))
            .expect("init");
        let config = std::fs::read_to_string(data.config()).unwrap();
        std::fs::write(data.config(), format!("{config}{TEST_ROLES}")).unwrap();
        let ca_pem = std::fs::read_to_string(&out.ca_file).unwrap();
        let mut h = Harness {
            rt,
            dir,
            clock: Arc::new(OffsetClock::default()),
            server: None,
            url: String::new(),
            server_port: None,
            ca_pem,
            db_url,
            pg,
            secrets: HashMap::new(),
            passwords: HashMap::new(),
            last_step: HashMap::new(),
        };
        h.remember("brevet-admin", &out.admin_password, &out.totp_uri);
        h.boot();
        Some(h)
    }

    pub fn data(&self) -> DataDir {
        DataDir::new(self.dir.path().join("data"))
    }

    fn boot(&mut self) {
        // Restarts keep the port, so enrolled agents find the server again.
        let port = self.server_port.unwrap_or(0);
        let opts = serve::Options {
            listen: Some(format!("127.0.0.1:{port}")),
            db: self.db_url.clone(),
            clock: self.clock.clone(),
        };
        let running = self
            .rt
            .block_on(serve::start(&self.data(), opts))
            .expect("serve");
        self.url = running.url();
        self.server_port = Some(running.addr.port());
        self.server = Some(running);
    }

    /// Stops the server (as a crash would: nothing is flushed specially) and starts it again on
    /// the same data dir and database.
    pub fn restart(&mut self) {
        let running = self.server.take().expect("running");
        self.rt.block_on(running.stop());
        self.boot();
    }

    /// Starts the server again after [`Harness::stop`].
    pub fn restart_after_stop(&mut self) {
        assert!(self.server.is_none(), "still running");
        self.boot();
    }

    pub fn stop(&mut self) {
        if let Some(running) = self.server.take() {
            self.rt.block_on(running.stop());
        }
    }

    /// A second `brevetd` on the same data dir and PostgreSQL database, on its own port (None
    /// on SQLite, which serves one process). Stop it with `rt.block_on(running.stop())`.
    pub fn replica(&self) -> Option<Running> {
        let db = self.db_url.clone().filter(|u| u.starts_with("postgres"))?;
        let opts = serve::Options {
            listen: Some("127.0.0.1:0".into()),
            db: Some(db),
            clock: self.clock.clone(),
        };
        Some(
            self.rt
                .block_on(serve::start(&self.data(), opts))
                .expect("replica"),
        )
    }

    /// Copies the stopped server's database aside, as a backup would (with the data dir's
    /// restore marker too when `with_marker`, as a backup of the whole data dir would).
    pub fn backup_db(&self, with_marker: bool) {
        assert!(self.server.is_none(), "stop the server first");
        let backup = self.dir.path().join("backup");
        let _ = std::fs::remove_dir_all(&backup);
        std::fs::create_dir_all(&backup).unwrap();
        match &self.pg {
            Some(pg) => pg.copy_database("brevet", "brevet_backup", true).unwrap(),
            None => {
                for f in ["brevet.db", "brevet.db-wal", "brevet.db-shm"] {
                    let from = self.data().root.join(f);
                    if from.exists() {
                        std::fs::copy(&from, backup.join(f)).unwrap();
                    }
                }
            }
        }
        if with_marker {
            let m = self.data().root.join("restore-marker.json");
            std::fs::copy(&m, backup.join("restore-marker.json")).unwrap();
        }
    }

    /// Puts the database (and the marker, if it was backed up) back from [`Harness::backup_db`].
    pub fn restore_db(&self) {
        assert!(self.server.is_none(), "stop the server first");
        let backup = self.dir.path().join("backup");
        match &self.pg {
            Some(pg) => pg.copy_database("brevet_backup", "brevet", true).unwrap(),
            None => {
                for f in ["brevet.db", "brevet.db-wal", "brevet.db-shm"] {
                    let to = self.data().root.join(f);
                    let _ = std::fs::remove_file(&to);
                    if backup.join(f).exists() {
                        std::fs::copy(backup.join(f), &to).unwrap();
                    }
                }
            }
        }
        let m = backup.join("restore-marker.json");
        if m.exists() {
            std::fs::copy(&m, self.data().root.join("restore-marker.json")).unwrap();
        }
    }

    /// The server's `brevet.toml`.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.data().config()
    }

    /// Appends `text` (TOML sections) to `brevet.toml`; it takes effect at the next start.
    pub fn append_config(&self, text: &str) {
        let path = self.config_path();
        let config = std::fs::read_to_string(&path).expect("read config");
        std::fs::write(&path, format!("{config}\n{text}\n")).expect("write config");
    }

    fn remember(&mut self, user: &str, password: &str, uri: &str) {
        let secret = uri
            .split("secret=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .expect("secret in uri");
        self.secrets.insert(
            user.into(),
            totp::secret_from_base32(secret).expect("base32"),
        );
        self.passwords.insert(user.into(), password.into());
    }

    /// Runs one SQL statement against the server's database, as an attacker with database
    /// access would (the server is not told).
    /// `user`'s TOTP secret in base32, as an authenticator app holds it.
    pub fn totp_base32(&self, user: &str) -> String {
        brevet_identity::totp::secret_base32(&self.secrets[user])
    }

    /// The database URL the server uses (`None`: the data dir's SQLite file).
    pub fn db_url(&self) -> Option<String> {
        self.db_url.clone()
    }

    /// Runs one SQL statement against the server's database, behind its back.
    pub fn sql(&self, statement: &str) {
        let url = self.db_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data().root.join("brevet.db").display())
        });
        self.rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
            pool.close().await;
        });
    }

    pub fn password(&self, user: &str) -> String {
        self.passwords[user].clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// A TOTP code for `user` that has not been used yet: when this 30 s step was used already,
    /// the clock moves to the next step.
    pub fn fresh_code(&mut self, user: &str) -> String {
        let mut now = self.now() as u64;
        if let Some(&last) = self.last_step.get(user)
            && now / 30 <= last
        {
            let next = (last + 1) * 30;
            self.advance((next - now) as i64);
            now = next;
        }
        self.last_step.insert(user.into(), now / 30);
        totp::code_at(&self.secrets[user], now)
    }

    /// A code for `user` from `secs_ago` seconds ago.
    pub fn old_code(&self, user: &str, secs_ago: i64) -> String {
        totp::code_at(&self.secrets[user], (self.now() - secs_ago) as u64)
    }

    /// A new device with its own key, not enrolled yet.
    pub fn device(&self) -> device::TestDevice {
        device::TestDevice::new(&self.url, &self.ca_pem)
    }

    /// A device enrolled as `name` with a token `admin` makes.
    pub fn enrolled(&self, admin: &Client, name: &str) -> device::TestDevice {
        let token = admin.enroll_token(name).expect("enroll token");
        let mut d = self.device();
        d.enroll(&token.token).expect("enroll");
        d
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.url, &self.ca_pem, None).expect("client")
    }

    /// A new session of `user`: its bearer token.
    pub fn session(&mut self, user: &str) -> String {
        let code = self.fresh_code(user);
        self.anonymous()
            .login(user, &self.passwords[user].clone(), &code)
            .unwrap_or_else(|e| panic!("login {user}: {e}"))
            .token
    }

    pub fn login(&mut self, user: &str) -> Client {
        let code = self.fresh_code(user);
        let c = self.anonymous();
        let session = c
            .login(user, &self.passwords[user].clone(), &code)
            .unwrap_or_else(|e| panic!("login {user}: {e}"));
        c.with_token(session.token)
    }

    /// Remembers the secrets of a person created through the API.
    pub fn remember_created(&mut self, created: &brevet_proto::api::UserCreated) {
        self.remember(&created.name, &created.password, &created.totp_uri);
    }

    /// Creates people (as admin) and remembers their secrets.
    pub fn add_user(&mut self, admin: &Client, name: &str, groups: &[&str]) {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let created = admin.add_user(name, &groups).expect("add user");
        self.remember(name, &created.password, &created.totp_uri);
    }

    /// The usual cast: admin, alice (operator), bob and carol (approvers), device web-01.
    pub fn cast(&mut self) -> Cast {
        let admin = self.login("brevet-admin");
        self.add_user(&admin, "alice", &["operators"]);
        self.add_user(&admin, "bob", &["approvers"]);
        self.add_user(&admin, "carol", &["approvers"]);
        admin
            .add_device(&AddDevice {
                name: "web-01".into(),
                tags: [("env".to_owned(), "prod".to_owned())].into(),
                groups: vec!["web".into()],
                os: None,
            })
            .expect("device");
        let alice = self.login("alice");
        let bob = self.login("bob");
        let carol = self.login("carol");
        Cast {
            admin,
            alice,
            bob,
            carol,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Cast {
    pub admin: Client,
    pub alice: Client,
    pub bob: Client,
    pub carol: Client,
}

pub fn ask(role: &str, duration: &str) -> CreateRequest {
    CreateRequest {
        device: "web-01".into(),
        role: role.into(),
        duration: duration.into(),
        ticket: Some("CHG-1234".into()),
        reason: "patch openssl on web-01".into(),
        start: None,
    }
}

/// The audit events of `kind`, oldest first.
pub fn events(admin: &Client, kind: &str) -> Vec<brevet_proto::api::AuditEventView> {
    admin
        .audit(0, 10_000)
        .expect("audit")
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// Waits until `cond` holds (up to `secs` seconds, a fail-safe); returns how long it took.
pub fn wait_for(what: &str, secs: u64, cond: impl FnMut() -> bool) -> std::time::Duration {
    brevet_testkit::wait_for(what, std::time::Duration::from_secs(secs), cond)
}

/// A plain device (no tags, no groups), added by `admin`.
pub fn add_device(admin: &Client, name: &str) {
    admin
        .add_device(&AddDevice {
            name: name.into(),
            tags: Default::default(),
            groups: vec![],
            os: None,
        })
        .unwrap_or_else(|e| panic!("add device {name}: {e}"));
}

/// Waits until `cond` holds, up to 5 s.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_for(what, 5, cond);
}

pub fn api_code(r: Result<impl std::fmt::Debug, brevet_cli::Error>) -> String {
    match r {
        Ok(v) => panic!("expected an API error, got {v:?}"),
        Err(e) => e
            .api_code()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not an API error: {e}")),
    }
}

pub fn pending(alice: &Client, role: &str) -> RequestView {
    let r = alice.create_request(&ask(role, "30m")).expect("request");
    assert_eq!(r.state.as_str(), "pending", "{r:?}");
    r
}

/// Runs `$body` against SQLite and against PostgreSQL as two tests.
#[macro_export]
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn sqlite() {
                if let Some(h) = Harness::start(Db::Sqlite, concat!(stringify!($name), "::sqlite"))
                {
                    ($body)(h);
                }
            }
            #[test]
            fn postgres() {
                if let Some(h) =
                    Harness::start(Db::Postgres, concat!(stringify!($name), "::postgres"))
                {
                    ($body)(h);
                }
            }
        }
    };
}
