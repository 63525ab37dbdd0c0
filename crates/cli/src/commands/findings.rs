//! `brevet findings [--device D]`: what devices last reported about standing privilege and drift.

use std::io::Write;

use brevet_proto::agent::{DeviceFindings, Finding, Severity};
use brevet_proto::validate;

use super::Ctx;
use crate::error::Error;
use crate::output::Table;

pub(crate) fn list(ctx: &mut Ctx<'_>, device: Option<&str>) -> Result<(), Error> {
    let device = device.map(validate::device_name).transpose()?;
    let reports = ctx.client()?.findings(device.as_deref())?;
    ctx.show(reports.as_slice(), table)
}

/// One row per finding or drift item, most severe first within each device.
pub(crate) fn table(out: &mut dyn Write, reports: &[DeviceFindings]) -> Result<(), Error> {
    let mut t = Table::new(&[
        "DEVICE",
        "TYPE",
        "SEVERITY",
        "KIND",
        "SUBJECT",
        "DETAIL",
        "REMEDIATION",
    ]);
    for r in reports {
        let mut rows: Vec<(&str, &Finding)> = r
            .findings
            .iter()
            .map(|f| ("finding", f))
            .chain(r.drift.iter().map(|f| ("drift", f)))
            .collect();
        rows.sort_by_key(|(_, f)| std::cmp::Reverse(f.severity));
        for (kind, f) in rows {
            t.row(vec![
                r.device.clone(),
                kind.to_owned(),
                severity(f.severity).to_owned(),
                f.kind.clone(),
                f.subject.clone(),
                f.detail.clone(),
                f.remediation.clone(),
            ]);
        }
    }
    t.print(out, "no findings")
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            kind: "nopasswd".into(),
            severity,
            subject: "/etc/sudoers.d/x".into(),
            detail: "bob ALL=(ALL) NOPASSWD: ALL".into(),
            remediation: "remove the rule".into(),
        }
    }

    #[test]
    fn most_severe_first_and_drift_marked() {
        let r = DeviceFindings {
            device: "web-01".into(),
            reported_at: "2026-11-28T10:00:00Z".into(),
            findings: vec![
                finding("a", Severity::Low),
                finding("b", Severity::Critical),
            ],
            drift: vec![finding("c", Severity::Medium)],
        };
        let mut out = Vec::new();
        table(&mut out, &[r]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let severities: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(severities, ["critical", "medium", "low"], "{text}");
        assert!(text.lines().nth(2).unwrap().contains(" drift "), "{text}");
        let mut out = Vec::new();
        table(&mut out, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no findings\n");
    }
}
