//! `brevetd init`: a new data directory that works at once (DESIGN §4, §9).

use std::net::IpAddr;

use brevet_identity::{ca::Ca, password, totp};
use brevet_store::{Store, UserRecord};
use serde::Serialize;
use serde_json::json;

use crate::Error;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::datadir::{DataDir, new_grant_key};

/// What `init` prints (once: the password and TOTP secret are not stored in clear anywhere).
#[derive(Debug, Clone, Serialize)]
pub struct InitOutput {
    pub data_dir: String,
    pub admin_user: String,
    pub admin_password: String,
    pub totp_uri: String,
    pub ca_file: String,
    pub server_url: String,
    pub grant_public_key: String,
    /// The key that verifies audit checkpoints (`audit.pub`), for auditors and witnesses.
    pub audit_public_key: String,
}

/// The bootstrap administrator's name.
pub const ADMIN: &str = "brevet-admin";
/// Members of this group manage users and devices and may revoke any grant.
pub const ADMINS_GROUP: &str = "admins";

/// `init` on the embedded default database, a SQLite file in the data directory.
pub async fn init(dir: &DataDir, listen: &str) -> Result<InitOutput, Error> {
    init_with_db(dir, listen, crate::db_url::DEFAULT).await
}

/// Creates the data directory for a server on `listen` whose database is `db`
/// (`sqlite://FILE`, relative to the data directory, or `postgres://…`): the database's schema
/// and bootstrap administrator, then the configuration naming `db`, the policy, the keys and
/// certificates.
///
/// The database is checked first: it must be reachable and hold no installation yet (no person,
/// no audit event), since a new one would come with its own keys and could neither verify nor
/// sign for the old. If any step fails, what this call wrote to the data directory is removed
/// (and the directory too, if it made it), so `init` can simply be run again.
pub async fn init_with_db(dir: &DataDir, listen: &str, db: &str) -> Result<InitOutput, Error> {
    if dir.is_initialised() {
        return Err(Error::AlreadyExists(format!(
            "`{}` is already initialised; use a new --data-dir or remove it first",
            dir.root.display()
        )));
    }
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        Error::Invalid(format!(
            "invalid listen address `{listen}`: expected IP:PORT"
        ))
    })?;
    crate::db_url::check(db).map_err(Error::Invalid)?;
    let made_dir = !dir.root.exists();
    dir.create()?;
    let mut written = Written::new(dir, made_dir);
    let url = dir.database_url(db);
    if let Some(path) = url.strip_prefix("sqlite://") {
        // A SQLite file is ours to remove only if it was not there before.
        let path = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(path).exists() {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                written.files.push(format!("{path}{suffix}").into());
            }
        }
    }
    let result = async {
        let store = open_empty(&url).await?;
        let out = write_installation(dir, &mut written, addr, listen, db, &store).await;
        store.close().await;
        out
    }
    .await;
    if result.is_ok() {
        written.keep();
    }
    result
}

/// Opens (and migrates) the store at `url` and checks that it holds no installation.
async fn open_empty(url: &str) -> Result<Store, Error> {
    let shown = crate::db_url::redact(url);
    let store = Store::open(url).await.map_err(|e| {
        Error::Config(format!(
            "cannot use the database `{shown}`: {e}; check that it exists and that brevetd \
             may connect to it and create tables"
        ))
    })?;
    let people = store.user_count().await?;
    let events = store.audit_size().await?;
    if people > 0 || events > 0 {
        store.close().await;
        return Err(Error::AlreadyExists(format!(
            "the database `{shown}` already holds a Brevet installation ({people} people, \
             {events} audit events): give `init` a new, empty database, or run `brevetd serve` \
             with a copy of that installation's data directory"
        )));
    }
    Ok(store)
}

/// The files of a new installation and its administrator.
async fn write_installation(
    dir: &DataDir,
    written: &mut Written,
    addr: std::net::SocketAddr,
    listen: &str,
    db: &str,
    store: &Store,
) -> Result<InitOutput, Error> {
    let config_text = Config::default_text(listen, db);
    Config::parse(&config_text).map_err(Error::Config)?;
    written.new_file(dir, &dir.policy(), brevet_policy::DEFAULT_POLICY, false)?;

    let ca = Ca::generate("Brevet CA")?;
    written.new_file(dir, &dir.ca_cert(), ca.cert_pem(), false)?;
    written.new_file(dir, &dir.ca_key(), ca.key_pem(), true)?;
    let mut names = vec!["localhost".to_owned()];
    if let Some(h) = hostname().filter(|h| h != "localhost") {
        names.push(h);
    }
    let mut ips: Vec<IpAddr> = vec![
        "127.0.0.1".parse().expect("literal"),
        "::1".parse().expect("literal"),
    ];
    if !addr.ip().is_unspecified() && !ips.contains(&addr.ip()) {
        ips.push(addr.ip());
    }
    let server = ca.issue_server(&names, &ips, 825)?;
    written.new_file(dir, &dir.server_cert(), &server.cert_pem, false)?;
    written.new_file(dir, &dir.server_key(), &server.key_pem, true)?;

    let (grant_key_b64, grant_key) = new_grant_key()?;
    written.new_file(dir, &dir.grant_key(), &grant_key_b64, true)?;
    let grant_public_key = brevet_proto::grant::public_key_b64(&grant_key);
    written.new_file(
        dir,
        &dir.grant_pub(),
        &format!("{grant_public_key}\n"),
        false,
    )?;
    let audit_key = crate::audit_key::create(dir)?;
    written.made([dir.audit_key(), dir.audit_pub()]);
    let totp_key = crate::totp_key::create(dir)?;
    written.made([dir.totp_key()]);
    // A data directory counts as initialised once its configuration exists. A password in the
    // database URL makes the configuration a secret.
    written.new_file(
        dir,
        &dir.config(),
        &config_text,
        crate::db_url::has_password(db),
    )?;

    let created = create_user(
        store,
        &SystemClock,
        &totp_key,
        ADMIN,
        &[ADMINS_GROUP.to_owned()],
        "init",
    )
    .await?;

    Ok(InitOutput {
        data_dir: dir.root.display().to_string(),
        admin_user: ADMIN.into(),
        admin_password: created.password,
        totp_uri: created.totp_uri,
        ca_file: dir.ca_cert().display().to_string(),
        server_url: format!("https://localhost:{}", addr.port()),
        grant_public_key,
        audit_public_key: audit_key.public_b64,
    })
}

/// What an `init` in progress has written, removed again unless it [`keep`](Written::keep)s it.
struct Written {
    root: Option<std::path::PathBuf>,
    files: Vec<std::path::PathBuf>,
}

impl Written {
    fn new(dir: &DataDir, made_dir: bool) -> Written {
        Written {
            root: made_dir.then(|| dir.root.clone()),
            files: Vec::new(),
        }
    }

    fn new_file(
        &mut self,
        dir: &DataDir,
        path: &std::path::Path,
        contents: &str,
        secret: bool,
    ) -> Result<(), Error> {
        dir.write_new(path, contents, secret)?;
        self.files.push(path.to_owned());
        Ok(())
    }

    /// Files another module has just created.
    fn made(&mut self, paths: impl IntoIterator<Item = std::path::PathBuf>) {
        self.files.extend(paths);
    }

    fn keep(mut self) {
        self.root = None;
        self.files.clear();
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        if let Some(root) = &self.root {
            let _ = std::fs::remove_dir(root);
        }
    }
}

/// A new account record with a random password and TOTP secret (sealed), not stored yet:
/// the record, the password and the TOTP URI, to be shown once.
pub async fn new_account(
    totp_key: &brevet_identity::seal::SealKey,
    clock: &dyn Clock,
    name: &str,
    groups: &[String],
    enabled: bool,
) -> Result<(UserRecord, String, String), Error> {
    let pw = password::generate_password();
    // On the bounded hashing pool, as logins are.
    let hash = crate::hashing::POOL.hash(pw.clone()).await?;
    let secret = totp::generate_secret();
    let mut groups = groups.to_vec();
    groups.sort();
    groups.dedup();
    let record = UserRecord {
        name: name.to_owned(),
        password_hash: hash,
        totp_secret: totp_key.seal(name, &totp::secret_base32(&secret))?,
        totp_last_step: None,
        enabled,
        groups,
        created_at: clock.now(),
    };
    Ok((record, pw, totp::otpauth_uri(&secret, name, "Brevet")))
}

/// Creates a person with a random password and TOTP secret in `groups`, with no two-person
/// rule, and records it in the audit trail: the bootstrap administrator of `init`, and tests.
/// People are otherwise created through `people::create`.
pub async fn create_user(
    store: &Store,
    clock: &dyn Clock,
    totp_key: &brevet_identity::seal::SealKey,
    name: &str,
    groups: &[String],
    actor: &str,
) -> Result<brevet_proto::api::UserCreated, Error> {
    brevet_proto::validate::new_person_name(name)?;
    for g in groups {
        brevet_proto::validate::group_name(g)?;
    }
    let (record, pw, totp_uri) = new_account(totp_key, clock, name, groups, true).await?;
    let now = record.created_at;
    let groups = record.groups.clone();
    let mut tx = store.begin().await?;
    if tx.user(name).await?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "user `{name}` already exists"
        )));
    }
    tx.insert_user(&record).await?;
    tx.audit(
        "user.created",
        actor,
        name,
        json!({ "groups": groups }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(brevet_proto::api::UserCreated {
        name: name.to_owned(),
        password: pw,
        totp_uri,
        groups,
        privileges: Vec::new(),
    })
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    brevet_proto::validate::device_name(h).ok()
}
