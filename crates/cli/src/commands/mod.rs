//! Dispatch of a parsed command line, and how a command finds its server.
//!
//! Connection settings come from the flags or `BREVET_*` variables first, then from the saved
//! session. A session token is only ever sent to the server it was issued by: with `--server`
//! naming another server, the session is ignored. Inputs are validated before a client is built,
//! so a bad value is reported even when no server is configured, and never leaves the machine.

mod admin;
mod audit;
mod audit_search;
mod audit_verify;
mod auth;
mod findings;
mod grants;
mod notify;
mod policy;
mod privilege;
mod report;
mod requests;
mod restore;
mod story;
mod totp;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::Env;
use crate::cli::{Command, Global};
use crate::client::{Client, normalize_server};
use crate::error::Error;
use crate::session::{self, Session};

/// Everything one command runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) global: Global,
    pub(crate) env: &'a Env,
    pub(crate) stdin: &'a mut dyn BufRead,
    pub(crate) out: &'a mut dyn Write,
}

pub(crate) fn dispatch(ctx: &mut Ctx<'_>, command: Command) -> Result<(), Error> {
    match command {
        Command::Login(args) => auth::login(ctx, &args),
        Command::Logout => auth::logout(ctx),
        Command::Whoami => auth::whoami(ctx),
        Command::User(c) => admin::user(ctx, c),
        Command::Group(c) => admin::group(ctx, c),
        Command::Device(c) => admin::device(ctx, c),
        Command::Privilege(c) => privilege::run(ctx, c),
        Command::Restore(c) => restore::run(ctx, c),
        Command::Request(args) => requests::create(ctx, &args),
        Command::Requests { pending } => requests::list(ctx, pending),
        Command::Approve { id, totp } => requests::approve(ctx, &id, totp.as_deref()),
        Command::Deny { id, reason, totp } => requests::deny(ctx, &id, &reason, totp.as_deref()),
        Command::Cancel { id } => requests::cancel(ctx, &id),
        Command::Breakglass {
            device,
            reason,
            totp,
        } => requests::breakglass(ctx, &device, &reason, totp.as_deref()),
        Command::Grants { show: Some(c), .. } => grants::show(ctx, c),
        Command::Grants {
            active,
            device,
            show: None,
        } => grants::list(ctx, active, device.as_deref()),
        Command::Grant(c) => grants::show(ctx, c),
        Command::Revoke { id, reason } => grants::revoke(ctx, &id, &reason),
        Command::Done { id } => grants::done(ctx, &id),
        Command::Findings { device } => findings::list(ctx, device.as_deref()),
        Command::Report { since, html } => report::run(ctx, since.as_deref(), html.as_deref()),
        Command::Audit(c) => audit::run(ctx, c),
        Command::Policy(c) => policy::run(ctx, c),
        Command::Notify(c) => notify::run(ctx, c),
        Command::Totp { uri } => totp::run(ctx, &uri),
    }
}

/// Where to connect, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connection {
    pub(crate) server: String,
    pub(crate) ca: PathBuf,
    pub(crate) token: Option<String>,
}

/// Combines flags/environment with the saved session (see the module comment).
/// With `need_token`, a missing or expired token is an error.
pub(crate) fn resolve(
    global: &Global,
    session: Option<&Session>,
    now: i64,
    need_token: bool,
) -> Result<Connection, Error> {
    let server = match (&global.server, session) {
        (Some(s), _) => normalize_server(s)?,
        (None, Some(s)) => s.server.clone(),
        (None, None) => return Err(Error::NoServer),
    };
    let same = session.filter(|s| s.server == server);
    let ca = match (&global.ca, same) {
        (Some(ca), _) => ca.clone(),
        (None, Some(s)) => s.ca.clone(),
        (None, None) => return Err(Error::NoCa { server }),
    };
    let token = match (&global.token, same) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(s)) if s.expired(now) && need_token => {
            return Err(Error::SessionExpired {
                server,
                at: s.expires_at.clone(),
            });
        }
        (None, Some(s)) if !s.expired(now) => Some(s.token.clone()),
        _ if need_token => return Err(Error::NotLoggedIn { server }),
        _ => None,
    };
    Ok(Connection { server, ca, token })
}

impl Ctx<'_> {
    /// The saved session, loaded only when a flag or variable is missing.
    fn session_if_needed(&self) -> Result<Option<Session>, Error> {
        let g = &self.global;
        if g.server.is_some() && g.ca.is_some() && g.token.is_some() {
            return Ok(None);
        }
        match &self.env.config_dir {
            Some(dir) => session::load(dir),
            None => Ok(None),
        }
    }

    /// A client carrying the session token.
    pub(crate) fn client(&self) -> Result<Client, Error> {
        let session = self.session_if_needed()?;
        let conn = resolve(&self.global, session.as_ref(), self.env.now, true)?;
        connect(&conn)
    }

    /// Prints `value` as JSON with `--json`, or runs `human` otherwise.
    pub(crate) fn show<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        human: impl FnOnce(&mut dyn Write, &T) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.global.json {
            crate::output::json(self.out, value)
        } else {
            human(self.out, value)
        }
    }
}

/// Reads the CA file and builds the client.
pub(crate) fn connect(conn: &Connection) -> Result<Client, Error> {
    let ca_pem = std::fs::read_to_string(&conn.ca).map_err(|source| Error::File {
        action: "read the CA file",
        path: conn.ca.clone(),
        source,
    })?;
    Client::new(&conn.server, &ca_pem, conn.token.clone())
}

#[cfg(test)]
mod tests;
