//! A real `brevetd` as a child process, set up the way an operator would: `brevetd init --json`
//! into a temporary data directory, then `brevetd serve` on a free loopback port.
//!
//! `init` writes the administrator into the SQLite database it creates. For PostgreSQL the
//! administrator is created again in that database with the server library
//! (`brevet_server::init::create_user`), since no command does that. Extra roles a benchmark
//! needs are appended to the `brevet.toml` that `init` wrote. The child's log goes to
//! `brevetd.log` in the data directory and is quoted when the server fails to start. Dropping a
//! [`Server`] kills the child and removes the directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brevet_cli::client::Client;
use brevet_identity::totp;
use tempfile::TempDir;

/// How long the server may take to answer `/v1/info` after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A person's password and TOTP secret, to log in.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    password: String,
    secret: Vec<u8>,
}

impl Credentials {
    /// From a password and an `otpauth://` URI, as `init` and `POST /v1/users` return them.
    pub(crate) fn new(user: &str, password: &str, totp_uri: &str) -> Result<Credentials, String> {
        let secret = totp_uri
            .split("secret=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .ok_or_else(|| format!("no secret in the TOTP URI for `{user}`"))?;
        let secret = totp::secret_from_base32(secret)
            .map_err(|e| format!("bad TOTP secret for `{user}`: {e}"))?;
        Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
            secret,
        })
    }

    /// Logs in with the current TOTP code. Each user logs in once, so no code is reused.
    pub(crate) fn login(&self, anonymous: &Client) -> Result<Client, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("the system clock is before 1970: {e}"))?
            .as_secs();
        let code = totp::code_at(&self.secret, now);
        let session = anonymous
            .login(&self.user, &self.password, &code)
            .map_err(|e| format!("login as `{}` failed: {e}", self.user))?;
        Ok(anonymous.with_token(session.token))
    }
}

/// A running `brevetd serve`; see the module documentation.
pub(crate) struct Server {
    /// Declared before `_dir`, so the child is killed before its directory is removed.
    child: Running,
    pub(crate) url: String,
    pub(crate) ca_pem: String,
    pub(crate) admin: Credentials,
    data: std::path::PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Initialises a data directory, appends `extra_roles` (TOML `[roles.*]` tables, or empty)
    /// to its `brevet.toml`, and serves it, on SQLite or on `postgres_url`.
    pub(crate) fn start(
        brevetd: &Path,
        postgres_url: Option<&str>,
        extra_roles: &str,
    ) -> Result<Server, String> {
        Server::start_with(brevetd, postgres_url, extra_roles, &[])
    }

    /// [`Server::start`], with `settings` (`key`, TOML value) replacing the lines of those keys
    /// that `init` wrote under `[server]`.
    pub(crate) fn start_with(
        brevetd: &Path,
        postgres_url: Option<&str>,
        extra_roles: &str,
        settings: &[(&str, String)],
    ) -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix("brevet-bench-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let data = dir.path().join("data");
        let port = brevet_testkit::free_port();
        let init = run_init(brevetd, &data, port)?;
        if !extra_roles.is_empty() {
            append(&data.join("brevet.toml"), extra_roles)?;
        }
        set(&data.join("brevet.toml"), settings)?;
        let field = |name: &str| {
            init[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`brevetd init --json` printed no `{name}`"))
        };
        let ca_file = field("ca_file")?;
        let ca_pem = std::fs::read_to_string(&ca_file)
            .map_err(|e| format!("cannot read the CA file `{ca_file}`: {e}"))?;
        let admin = match postgres_url {
            None => Credentials::new(
                brevet_server::init::ADMIN,
                &field("admin_password")?,
                &field("totp_uri")?,
            )?,
            Some(url) => admin_in_postgres(url, &data)?,
        };
        let log = dir.path().join("brevetd.log");
        // The port was free a moment ago; if another process took it meanwhile, try another.
        let mut failure = String::new();
        for attempt in 1..=2 {
            let port = if attempt == 1 {
                port
            } else {
                brevet_testkit::free_port()
            };
            let url = format!("https://127.0.0.1:{port}");
            let mut child = Running(spawn_serve(brevetd, &data, port, postgres_url, &log)?);
            match wait_ready(&mut child.0, &url, &ca_pem, &log) {
                Ok(()) => {
                    return Ok(Server {
                        child,
                        url,
                        ca_pem,
                        admin,
                        data,
                        _dir: dir,
                    });
                }
                Err(e) if attempt == 1 && log_tail(&log).contains("cannot listen") => failure = e,
                Err(e) => return Err(e),
            }
        }
        Err(failure)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// A second `brevetd serve` on the same data directory and database (a replica), on a port
    /// of its own, logging to `brevetd-replica.log`.
    pub(crate) fn replica(
        &self,
        brevetd: &Path,
        postgres_url: Option<&str>,
    ) -> Result<Replica, String> {
        let port = brevet_testkit::free_port();
        let url = format!("https://127.0.0.1:{port}");
        let log = self.data.with_file_name("brevetd-replica.log");
        let mut child = Running(spawn_serve(brevetd, &self.data, port, postgres_url, &log)?);
        wait_ready(&mut child.0, &url, &self.ca_pem, &log)?;
        Ok(Replica { child, url })
    }

    /// A client with no session, trusting the server's CA.
    pub(crate) fn anonymous(&self) -> Result<Client, String> {
        Client::new(&self.url, &self.ca_pem, None)
            .map_err(|e| format!("cannot make a client for `{}`: {e}", self.url))
    }
}

/// A replica started by [`Server::replica`]; killed when dropped.
pub(crate) struct Replica {
    child: Running,
    pub(crate) url: String,
}

impl Replica {
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// The child process; killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `/v1/info` until it answers, the child exits, or the timeout passes.
fn wait_ready(child: &mut Child, url: &str, ca_pem: &str, log: &Path) -> Result<(), String> {
    let client = Client::new(url, ca_pem, None)
        .map_err(|e| format!("cannot make a client for `{url}`: {e}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "brevetd exited during start-up ({status}); its log:\n{}",
                log_tail(log)
            ));
        }
        match client.info() {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "brevetd did not answer /v1/info within {} s ({e}); its log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(log)
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The last lines of the server's log.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `brevetd init --data-dir DATA --listen 127.0.0.1:PORT --json`, parsed.
fn run_init(brevetd: &Path, data: &Path, port: u16) -> Result<serde_json::Value, String> {
    let out = Command::new(brevetd)
        .arg("init")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--json"])
        .env_remove("BREVET_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", brevetd.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`brevetd init` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`brevetd init --json` printed something that is not JSON: {e}"))
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("\n{text}").as_bytes()))
        .map_err(|e| format!("cannot add roles to `{}`: {e}", path.display()))
}

/// Replaces the line `key = …` of each of `settings` in the file at `path`.
fn set(path: &Path, settings: &[(&str, String)]) -> Result<(), String> {
    if settings.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = String::new();
    let mut found = 0;
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match settings.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => {
                out.push_str(&format!("{k} = {v}\n"));
                found += 1;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if found != settings.len() {
        return Err(format!(
            "`{}` lacks some of {:?}",
            path.display(),
            settings.iter().map(|(k, _)| *k).collect::<Vec<_>>()
        ));
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Creates the `admin` user (group `admins`) in the PostgreSQL database at `url`.
fn admin_in_postgres(url: &str, data: &std::path::Path) -> Result<Credentials, String> {
    let dir = brevet_server::datadir::DataDir::new(data);
    let totp_key = brevet_server::totp_key::load(&dir)
        .map_err(|e| e.to_string())?
        .ok_or("init wrote no totp.key")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a Tokio runtime: {e}"))?;
    let created = rt.block_on(async {
        let store = brevet_store::Store::open(url)
            .await
            .map_err(|e| format!("cannot open `{url}`: {e}"))?;
        let created = brevet_server::init::create_user(
            &store,
            &brevet_server::clock::SystemClock,
            &totp_key,
            brevet_server::init::ADMIN,
            &[brevet_server::init::ADMINS_GROUP.to_owned()],
            "bench",
        )
        .await
        .map_err(|e| format!("cannot create the admin in PostgreSQL: {e}"));
        store.close().await;
        created
    })?;
    Credentials::new(&created.name, &created.password, &created.totp_uri)
}

/// Spawns `brevetd serve`, logging to `log`.
fn spawn_serve(
    brevetd: &Path,
    data: &Path,
    port: u16,
    postgres_url: Option<&str>,
    log: &Path,
) -> Result<Child, String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open `{}`: {e}", log.display()))?;
    let mut cmd = Command::new(brevetd);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("BREVET_DB")
        .env_remove("BREVET_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    if let Some(url) = postgres_url {
        cmd.args(["--db", url]);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot run `{} serve`: {e}", brevetd.display()))
}
