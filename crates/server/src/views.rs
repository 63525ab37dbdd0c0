//! The API views of stored records: the store returns records (unix times, the grant document
//! as signed), and this module alone decides how the API shows them, so an API change never
//! reaches the store.

use brevet_proto::agent::DeviceFindings;
use brevet_proto::api::{Approval, DeviceView, GrantView, RequestView};
use brevet_proto::timefmt::rfc3339;
use brevet_store::{DeviceRecord, GrantRecord, ReportRecord, RequestRecord};

use crate::error::Error;

/// A grant as the API shows it; who, what and when come from its signed document.
pub(crate) fn grant(g: GrantRecord) -> GrantView {
    let doc = g.doc;
    GrantView {
        id: g.id,
        request_id: g.request_id,
        state: g.state,
        user: doc.user,
        device: doc.device,
        role: doc.role,
        runas: doc.runas,
        commands: doc.commands,
        groups: doc.groups,
        not_before: doc.not_before,
        not_after: doc.not_after,
        ticket: doc.ticket,
        approvers: doc.approvers,
        kind: doc.kind,
        issued_at: rfc3339(g.issued_at),
        ended_at: g.ended_at.map(rfc3339),
        end_reason: g.end_reason,
        ended_by: g.ended_by,
        revocation_confirmed_at: g.revocation_confirmed_at.map(rfc3339),
        signed: g.signed,
    }
}

/// A request as the API shows it. Fails only when its stored decision is not one the server
/// wrote (`decision_record`).
pub(crate) fn request(r: RequestRecord) -> Result<RequestView, Error> {
    let decision = serde_json::from_value(r.decision)
        .map_err(|e| Error::Internal(format!("the stored decision of request `{}`: {e}", r.id)))?;
    Ok(RequestView {
        id: r.id,
        state: r.state,
        user: r.user,
        device: r.device,
        role: r.role,
        duration_seconds: r.duration_seconds,
        ticket: r.ticket,
        reason: r.reason,
        start: r.start_at.map(rfc3339),
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        decided_at: r.decided_at.map(rfc3339),
        approvals_required: r.approvals_required,
        approvals: r
            .approvals
            .into_iter()
            .map(|a| Approval {
                approver: a.approver,
                at: rfc3339(a.at),
            })
            .collect(),
        decision,
        grant_id: r.grant_id,
    })
}

/// [`request`] for each record.
pub(crate) fn requests(rs: Vec<RequestRecord>) -> Result<Vec<RequestView>, Error> {
    rs.into_iter().map(request).collect()
}

/// The decision as stored with a request (the API's shape, as JSON).
pub(crate) fn decision_record(
    d: &brevet_proto::api::DecisionView,
) -> Result<serde_json::Value, Error> {
    serde_json::to_value(d).map_err(|e| Error::Internal(format!("encoding a decision: {e}")))
}

pub(crate) fn device(d: DeviceRecord) -> DeviceView {
    DeviceView {
        name: d.name,
        tags: d.tags,
        groups: d.groups,
        os: d.os,
        enabled: d.enabled,
        created_at: rfc3339(d.created_at),
    }
}

/// A device's latest scan and drift report.
pub(crate) fn findings(r: ReportRecord) -> DeviceFindings {
    DeviceFindings {
        device: r.device,
        reported_at: rfc3339(r.reported_at),
        findings: r.findings,
        drift: r.drift,
    }
}
