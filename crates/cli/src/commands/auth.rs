//! `brevet login`, `logout` and `whoami`: getting, ending and showing a session.
//!
//! The password is read from the first line of standard input: piped with `--password-stdin`,
//! or typed at a prompt (on stderr, with echo off) when standard input is a terminal. It is
//! never taken from the command line, where other users could read it in the process list.

use std::io::Write;

use brevet_proto::api::Whoami;
use brevet_proto::validate;

use super::{Ctx, connect, resolve};
use crate::cli::LoginArgs;
use crate::error::Error;
use crate::output::{Fields, joined, opt, sanitize};
use crate::session::{self, Session};

pub(crate) fn login(ctx: &mut Ctx<'_>, args: &LoginArgs) -> Result<(), Error> {
    validate::user_name(&args.user)?;
    let totp = args.totp.as_deref().ok_or(Error::MissingTotp)?;
    validate::totp_code(totp)?;
    let dir = ctx.env.config_dir.clone().ok_or(Error::NoConfigDir)?;
    // A damaged or too-open old session must not stop the login that replaces it.
    let old = session::load(&dir).ok().flatten();
    let mut conn = resolve(&ctx.global, old.as_ref(), ctx.env.now, false)?;
    conn.ca = std::fs::canonicalize(&conn.ca).map_err(|source| Error::File {
        action: "read the CA file",
        path: conn.ca.clone(),
        source,
    })?;
    conn.token = None;
    let client = connect(&conn)?;
    let password = read_password(ctx, &args.user, args.password_stdin)?;
    let resp = client.login(&args.user, &password, totp)?;
    session::save(
        &dir,
        &Session {
            server: client.server().to_owned(),
            ca: conn.ca,
            token: resp.token.clone(),
            user: resp.user.clone(),
            expires_at: resp.expires_at.clone(),
        },
    )?;
    let server = client.server().to_owned();
    ctx.show(&resp, |out, r| {
        let (user, until) = (sanitize(&r.user), sanitize(&r.expires_at));
        writeln!(out, "logged in to {server} as {user} until {until}")?;
        Ok(())
    })
}

pub(crate) fn logout(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let dir = ctx.env.config_dir.clone();
    let saved = dir.as_deref().map(session::load);
    let session = match &saved {
        Some(Ok(s)) => s.clone(),
        _ => None,
    };
    let mut server_done = false;
    if let Ok(conn) = resolve(&ctx.global, session.as_ref(), ctx.env.now, true) {
        match connect(&conn).and_then(|c| c.logout()) {
            Ok(()) => server_done = true,
            Err(e) => eprintln!("brevet: warning: the server did not end the session: {e}"),
        }
    }
    // Forget the saved session unless the flags name another server than the one it is for.
    let other_server = match (&ctx.global.server, &session) {
        (Some(s), Some(saved)) => crate::client::normalize_server(s)? != saved.server,
        _ => false,
    };
    let removed = match &dir {
        Some(dir) if !other_server => session::remove(dir)?,
        _ => false,
    };
    let result = serde_json::json!({ "logged_out": server_done || removed });
    ctx.show(&result, |out, _| {
        let text = if server_done || removed {
            "logged out"
        } else {
            "not logged in"
        };
        writeln!(out, "{text}")?;
        Ok(())
    })
}

pub(crate) fn whoami(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let me = ctx.client()?.whoami()?;
    ctx.show(&me, whoami_fields)
}

fn whoami_fields(out: &mut dyn Write, w: &Whoami) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("user", &w.user)
        .add("groups", joined(&w.groups))
        .add("session_expires_at", &w.session_expires_at)
        .add("mfa_at", opt(w.mfa_at.as_deref()));
    f.print(out)
}

/// The first line of standard input, without its line ending.
fn read_password(ctx: &mut Ctx<'_>, user: &str, from_stdin: bool) -> Result<String, Error> {
    let prompt = !from_stdin && ctx.env.stdin_is_terminal;
    let mut line = String::new();
    {
        let _no_echo = if prompt {
            eprint!("password for {user}: ");
            NoEcho::start()
        } else {
            None
        };
        ctx.stdin.read_line(&mut line).map_err(Error::Stdin)?;
    }
    if prompt {
        eprintln!();
    }
    let password = first_line(&line);
    if password.is_empty() {
        return Err(Error::MissingPassword);
    }
    Ok(password.to_owned())
}

fn first_line(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

/// Terminal echo switched off (with `stty`) while the password is typed; back on when dropped.
struct NoEcho;

impl NoEcho {
    fn start() -> Option<NoEcho> {
        stty("-echo").then_some(NoEcho)
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        stty("echo");
    }
}

/// Runs `stty ARG` on the terminal that is standard input; whether it worked.
fn stty(arg: &str) -> bool {
    use std::process::{Command, Stdio};
    Command::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_line_endings_are_stripped_but_nothing_else() {
        assert_eq!(first_line("s3cret\n"), "s3cret");
        assert_eq!(first_line("s3cret\r\n"), "s3cret");
        assert_eq!(first_line(" spaced pw "), " spaced pw ");
        assert_eq!(first_line(""), "");
    }
}
