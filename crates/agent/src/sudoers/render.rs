//! Rendering a grant as a sudoers drop-in. Every field that reaches the text is validated here
//! again, whatever the caller did before: the document is signed, but the renderer does not rely
//! on that.

use brevet_proto::grant::GrantDoc;
use brevet_proto::{timefmt, validate};

use crate::{Error, Result};

fn refuse(why: &str) -> Error {
    Error::Invalid(brevet_proto::Error::Grant(why.to_owned()))
}

/// `YYYYMMDDHHMMSSZ`, the form sudo's `NOTBEFORE=`/`NOTAFTER=` read.
fn sudo_time(unix: i64) -> String {
    timefmt::rfc3339(unix)
        .chars()
        .filter(|c| c.is_ascii_digit())
        .chain(['Z'])
        .collect()
}

/// The drop-in for `doc`:
///
/// ```text
/// # Brevet grant <id>: <user> as <runas> on <device>, ticket <T|none>, until <not_after>. Managed by brevet-agent; do not edit.
/// Defaults:<user> timestamp_timeout=0
/// Defaults:<user> logfile=/var/log/brevet/sudo.log
/// <user> ALL=(<runas>) [NOTBEFORE=… NOTAFTER=… ]NOPASSWD: <cmd1>, <cmd2>
/// ```
///
/// The `logfile` line makes sudo (1.9.13 honours it per user) write every command of the user,
/// allowed or refused, to Brevet's own log in the default text format, where the agent reads
/// it ([`crate::usage`]); it applies only while some drop-in of that user exists.
/// `NOPASSWD` because approval and step-up MFA already authenticated the person; the time bounds
/// (when `time_bounds`) make sudo itself refuse outside the window even if the agent is dead.
/// A grant without commands has no drop-in: that is an error here.
pub fn render(doc: &GrantDoc, time_bounds: bool) -> Result<String> {
    doc.validate()?;
    // The fields that reach the text, checked one by one (defence in depth over `validate`).
    let id = validate::id("grant id", &doc.grant_id)?;
    let user = validate::user_name(&doc.user)?;
    let runas = validate::user_name(&doc.runas)?;
    let device = validate::device_name(&doc.device)?;
    if device != doc.device {
        return Err(refuse("device name is not in lower case"));
    }
    let ticket = match &doc.ticket {
        Some(t) => validate::ticket(t)?,
        None => "none",
    };
    if doc.commands.is_empty() {
        return Err(refuse(
            "grant has no commands, so it has no sudoers drop-in",
        ));
    }
    let mut commands = Vec::with_capacity(doc.commands.len());
    for c in &doc.commands {
        let c = validate::command(c, true)?;
        let program = c.split(' ').next().unwrap_or_default();
        if program.rsplit('/').next() == Some("sudoedit") {
            // sudo refuses `sudoedit` given with a path; the role must grant `sudoedit` itself.
            return Err(refuse("`sudoedit` cannot be granted by path"));
        }
        commands.push(c);
    }
    let not_before = doc.not_before_secs()?;
    let not_after = doc.not_after_secs()?;
    if not_after <= not_before {
        return Err(refuse("not_after is not after not_before"));
    }
    let bounds = if time_bounds {
        format!(
            "NOTBEFORE={} NOTAFTER={} ",
            sudo_time(not_before),
            sudo_time(not_after)
        )
    } else {
        String::new()
    };
    Ok(format!(
        "# Brevet grant {id}: {user} as {runas} on {device}, ticket {ticket}, until {until}. \
         Managed by brevet-agent; do not edit.\n\
         Defaults:{user} timestamp_timeout=0\n\
         Defaults:{user} logfile={log}\n\
         {user} ALL=({runas}) {bounds}NOPASSWD: {cmds}\n",
        until = timefmt::rfc3339(not_after),
        cmds = commands.join(", "),
        log = crate::usage::SUDO_LOG,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use brevet_proto::grant::GrantKind;

    pub(crate) fn doc() -> GrantDoc {
        GrantDoc {
            v: 1,
            grant_id: "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            request_id: "1b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            device: "web-01".into(),
            user: "alice".into(),
            role: "pkg-update".into(),
            runas: "root".into(),
            commands: vec![
                "/usr/bin/apt-get update".into(),
                "/usr/bin/apt-get upgrade".into(),
            ],
            groups: vec![],
            not_before: "2026-11-28T10:00:00Z".into(),
            not_after: "2026-11-28T10:30:00Z".into(),
            ticket: Some("CHG-1234".into()),
            approvers: vec!["bob".into()],
            issued_at: "2026-11-28T10:00:00Z".into(),
            kind: GrantKind::Normal,
        }
    }

    #[test]
    fn renders_exactly() {
        let header = "# Brevet grant 0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d: alice as root on web-01, \
                      ticket CHG-1234, until 2026-11-28T10:30:00Z. Managed by brevet-agent; do not edit.\n\
                      Defaults:alice timestamp_timeout=0\n\
                      Defaults:alice logfile=/var/log/brevet/sudo.log\n";
        assert_eq!(
            render(&doc(), true).unwrap(),
            format!(
                "{header}alice ALL=(root) NOTBEFORE=20261128100000Z NOTAFTER=20261128103000Z \
                 NOPASSWD: /usr/bin/apt-get update, /usr/bin/apt-get upgrade\n"
            )
        );
        assert_eq!(
            render(&doc(), false).unwrap(),
            format!(
                "{header}alice ALL=(root) NOPASSWD: /usr/bin/apt-get update, /usr/bin/apt-get upgrade\n"
            )
        );
    }

    #[test]
    fn all_ticketless_and_offset_times_render_normalised() {
        let mut d = doc();
        d.commands = vec!["ALL".into()];
        d.ticket = None;
        d.not_after = "2026-11-28T11:30:00+01:00".into();
        let text = render(&d, false).unwrap();
        assert!(
            text.contains("ticket none, until 2026-11-28T10:30:00Z."),
            "{text}"
        );
        assert!(text.ends_with("alice ALL=(root) NOPASSWD: ALL\n"), "{text}");
    }

    #[test]
    fn refuses_every_hostile_field() {
        type Change = Box<dyn Fn(&mut GrantDoc)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "user",
                Box::new(|d| d.user = "bob ALL=(ALL) NOPASSWD: ALL".into()),
            ),
            ("user newline", Box::new(|d| d.user = "bob\nroot".into())),
            ("runas", Box::new(|d| d.runas = "ALL".into())),
            (
                "runas paren",
                Box::new(|d| d.runas = "root) ALL=(ALL".into()),
            ),
            (
                "command comma",
                Box::new(|d| d.commands = vec!["/bin/ls, ALL".into()]),
            ),
            (
                "command newline",
                Box::new(|d| d.commands = vec!["/bin/ls\nbob ALL=(ALL) ALL".into()]),
            ),
            (
                "command colon",
                Box::new(|d| d.commands = vec!["/bin/ls a:b".into()]),
            ),
            (
                "command wildcard",
                Box::new(|d| d.commands = vec!["/bin/*".into()]),
            ),
            (
                "command backslash",
                Box::new(|d| d.commands = vec!["/bin/ls \\".into()]),
            ),
            (
                "sudoedit by path",
                Box::new(|d| d.commands = vec!["/usr/bin/sudoedit /etc/x".into()]),
            ),
            (
                "no commands",
                Box::new(|d| {
                    d.commands = vec![];
                    d.groups = vec!["docker".into()];
                }),
            ),
            (
                "ticket",
                Box::new(|d| d.ticket = Some("X\n#include /tmp/evil".into())),
            ),
            (
                "device",
                Box::new(|d| d.device = "web-01\nbob ALL=(ALL) ALL".into()),
            ),
            ("grant id", Box::new(|d| d.grant_id = "x\nALL".into())),
            ("window", Box::new(|d| d.not_after = d.not_before.clone())),
        ];
        for (name, change) in cases {
            let mut d = doc();
            change(&mut d);
            assert!(render(&d, true).is_err(), "{name} was rendered");
        }
    }
}
