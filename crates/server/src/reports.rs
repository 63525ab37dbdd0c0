//! Standing-privilege findings and drift reported by devices.
//!
//! A report replaces the device's previous one. It is audited with its counts; each drift item
//! not in the previous report becomes one `drift.detected` event, so an agent that reports the
//! same drift every few minutes does not flood the trail. Everything a device sends is bounded
//! and checked before it is stored.

use std::collections::{BTreeMap, HashSet};

use brevet_proto::agent::{DeviceFindings, DeviceReport, Finding, ReportResponse};
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use brevet_proto::validate;
use brevet_store::NewReport;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::delivery::device_text;
use crate::devices::Device;

/// Most findings (and, separately, drift items) in one report.
const MAX_ITEMS: usize = 5000;

/// `POST /v1/device/report`.
pub async fn report(app: &App, device: &Device, r: DeviceReport) -> Result<ReportResponse, Error> {
    check_report(&r)?;
    let agent_time = rfc3339(parse_rfc3339("agent_time", &r.agent_time)?);
    let now = app.clock.now();
    let actor = device.actor();
    let mut tx = app.store.begin().await?;
    let before: HashSet<String> = tx
        .device_report(&device.name)
        .await?
        .map(|p| p.drift.into_iter().map(|d| d.id).collect())
        .unwrap_or_default();
    tx.replace_device_report(&NewReport {
        device: &device.name,
        reported_at: now,
        agent_time: &agent_time,
        findings: &r.findings,
        drift: &r.drift,
    })
    .await?;
    let mut severities: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.findings {
        *severities.entry(severity(f)).or_default() += 1;
    }
    tx.audit(
        "device.report",
        &actor,
        &device.name,
        json!({
            "findings": r.findings.len(), "drift": r.drift.len(), "severities": severities,
            "mode": r.mode, "agent_version": r.agent_version, "agent_time": agent_time,
        }),
        now,
    )
    .await?;
    for d in r.drift.iter().filter(|d| !before.contains(&d.id)) {
        tx.audit("drift.detected", &actor, &device.name, json!(d), now)
            .await?;
    }
    tx.commit().await?;
    Ok(ReportResponse {
        findings: r.findings.len(),
        drift: r.drift.len(),
        server_time: rfc3339(app.clock.now()),
    })
}

fn severity(f: &Finding) -> &'static str {
    use brevet_proto::agent::Severity::*;
    match f.severity {
        Info => "info",
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
}

fn check_report(r: &DeviceReport) -> Result<(), Error> {
    let bad = |what: String| Error::Invalid(format!("invalid report: {what}"));
    device_text("agent_version", &r.agent_version, 64, false).map_err(bad)?;
    if !matches!(r.mode.as_str(), "audit" | "enforce") {
        return Err(bad(format!(
            "`mode` is `{}`; expected `audit` or `enforce`",
            r.mode.chars().take(20).collect::<String>().escape_debug()
        )));
    }
    for (list, items) in [("findings", &r.findings), ("drift", &r.drift)] {
        if items.len() > MAX_ITEMS {
            return Err(bad(format!("more than {MAX_ITEMS} {list}")));
        }
        for (i, f) in items.iter().enumerate() {
            check_finding(f).map_err(|e| bad(format!("{list} #{}: {e}", i + 1)))?;
        }
    }
    Ok(())
}

fn check_finding(f: &Finding) -> Result<(), String> {
    if f.id.is_empty() || f.kind.is_empty() {
        return Err("`id` and `kind` must not be empty".into());
    }
    device_text("id", &f.id, 200, false)?;
    device_text("kind", &f.kind, 64, false)?;
    device_text("subject", &f.subject, 500, false)?;
    device_text("detail", &f.detail, 4000, true)?;
    device_text("remediation", &f.remediation, 2000, true)
}

/// `GET /v1/findings[?device=D]`.
pub async fn findings(app: &App, device: Option<&str>) -> Result<Vec<DeviceFindings>, Error> {
    let device = device.map(validate::device_name).transpose()?;
    Ok(app
        .store
        .device_reports(device.as_deref())
        .await?
        .into_iter()
        .map(crate::views::findings)
        .collect())
}
