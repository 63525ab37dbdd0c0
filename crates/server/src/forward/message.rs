//! One audit event as one RFC 5424 syslog message, framed by octet counting (RFC 5425 §4.3).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - KIND [brevet@32473 seq="N" chain="…"] BODY`. The
//! timestamp is the event's own time, the MSGID its kind, and the structured data carries the
//! sequence number (for deduplication and gap detection) and the chain hash. The body is JSON in
//! plain ASCII (every other character escaped as `\uXXXX`), so it is valid as RFC 5424 MSG-ANY
//! and needs no BOM. Messages are never truncated: a collector must accept the longest event
//! (a few KiB).

use brevet_proto::api::AuditEventView;
use brevet_proto::ocsf;

use crate::config::SyslogFormat;

/// The SD-ID of Brevet's structured data. 32473 is the private enterprise number reserved for
/// documentation (RFC 5612); collectors match on the whole SD-ID.
pub(crate) const SD_ID: &str = "brevet@32473";

/// What is the same in every message.
pub(crate) struct Header {
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub format: SyslogFormat,
}

/// Appends the framed message for `e` to `out`.
pub(crate) fn frame(h: &Header, e: &AuditEventView, out: &mut Vec<u8>) {
    let msg = message(h, e);
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg.as_bytes());
}

/// The RFC 5424 message for `e`, without framing.
pub(crate) fn message(h: &Header, e: &AuditEventView) -> String {
    let body = match h.format {
        SyslogFormat::Json => serde_json::to_string(e),
        SyslogFormat::Ocsf => serde_json::to_string(&ocsf::event_to_ocsf(e)),
    }
    .unwrap_or_default();
    let pri =
        u16::from(h.facility) * 8 + u16::from(syslog_severity(ocsf::severity_id(&e.kind, &e.data)));
    format!(
        "<{pri}>1 {ts} {host} {app} - {msgid} [{SD_ID} seq=\"{seq}\" chain=\"{chain}\"] {body}",
        ts = header_field(&e.at, 64),
        host = header_field(&h.hostname, 255),
        app = header_field(&h.app_name, 48),
        msgid = header_field(&e.kind, 32),
        seq = e.seq,
        chain = param_value(&e.chain_hash),
        body = ascii_json(&body),
    )
}

/// Syslog severity (RFC 5424 §6.2.1) from the OCSF severity id.
fn syslog_severity(ocsf_severity: u8) -> u8 {
    match ocsf_severity {
        ocsf::severity::CRITICAL => 2,
        ocsf::severity::HIGH => 3,
        ocsf::severity::MEDIUM => 4,
        ocsf::severity::LOW => 5,
        _ => 6,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn param_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Serialised JSON with every non-ASCII character written as a `\u` escape. Non-ASCII can only
/// occur inside JSON strings, where the escape means the same character.
fn ascii_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> AuditEventView {
        AuditEventView {
            seq: 7,
            at: "2026-11-28T10:00:00Z".into(),
            kind: kind.into(),
            actor: "alice".into(),
            subject: "r-1".into(),
            data,
            leaf_hash: "aa".into(),
            chain_hash: "c0ffee".into(),
        }
    }

    fn header(format: SyslogFormat) -> Header {
        Header {
            facility: 10,
            hostname: "ctl-1".into(),
            app_name: "brevet".into(),
            format,
        }
    }

    #[test]
    fn rfc5424_message_with_seq_and_chain() {
        let msg = message(
            &header(SyslogFormat::Json),
            &event("request.created", json!({})),
        );
        let prefix = "<86>1 2026-11-28T10:00:00Z ctl-1 brevet - request.created \
                      [brevet@32473 seq=\"7\" chain=\"c0ffee\"] {";
        assert!(msg.starts_with(prefix), "{msg}");
        let body: AuditEventView = serde_json::from_str(&msg[prefix.len() - 1..]).unwrap();
        assert_eq!((body.seq, body.kind.as_str()), (7, "request.created"));
        // login.failed is Low in OCSF: notice (5); an alert is High: error (3).
        let failed = message(
            &header(SyslogFormat::Json),
            &event("login.failed", json!({})),
        );
        assert!(failed.starts_with("<85>1 "), "{failed}");
        let alert = message(&header(SyslogFormat::Json), &event("alert.x", json!({})));
        assert!(alert.starts_with("<83>1 "), "{alert}");
    }

    #[test]
    fn octet_counting_frames_and_ascii_bodies() {
        let e = event("request.created", json!({ "reason": "café ☕ \u{1F600}" }));
        let mut out = Vec::new();
        frame(&header(SyslogFormat::Ocsf), &e, &mut out);
        frame(&header(SyslogFormat::Ocsf), &e, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.is_ascii());
        let (len, rest) = text.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        let first = &rest[..len];
        assert!(rest[len..].starts_with(&format!("{len} ")));
        let body = &first[first.find("] ").unwrap() + 2..];
        let o: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(o["class_uid"], 3005);
        assert_eq!(
            o["unmapped"]["brevet"]["data"]["reason"],
            "café ☕ \u{1F600}"
        );
    }

    #[test]
    fn fields_are_sanitised() {
        assert_eq!(header_field("", 10), "-");
        assert_eq!(header_field("a b\u{e9}c", 10), "abc");
        assert_eq!(header_field(&"x".repeat(40), 32).len(), 32);
        assert_eq!(param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(ascii_json("\"é\""), "\"\\u00e9\"");
    }
}
