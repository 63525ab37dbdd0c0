//! A typed, blocking HTTPS client for the `brevetd` `/v1` API.
//!
//! One method per endpoint, taking and returning the wire types of `brevet-proto`. The client
//! trusts only the Brevet CA it is given, follows no redirects (a bearer token never leaves for
//! another address), and gives up after 30 s. Path segments (ids, user and group names) are
//! validated before a URL is built, so no input can change which endpoint is called.
//! A non-2xx answer becomes [`Error::Api`] carrying the server's stable `code` and message.
//!
//! Used by the `brevet` commands, and by integration tests and benchmarks.

use std::time::Duration;

use brevet_audit::{Checkpoint, ConsistencyProof, InclusionProof};
use brevet_proto::agent::{DeviceFindings, EnrollRequest, EnrollResponse, EnrollToken};
use brevet_proto::api::{
    AddDevice, AddUser, ApproveBody, AuditEventView, BreakglassBody, CreateRequest, DenyBody,
    DeviceView, ErrorBody, GrantView, GroupChange, LoginRequest, LoginResponse, ReasonBody,
    RequestView, ServerInfo, UserCreated, UserView, Whoami,
};
use brevet_proto::api::{AddWebhook, ConfirmBody, PrivilegeView, RestoreView, WebhookView};
use brevet_proto::validate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::{Response, Uri};
use ureq::{Agent, Body, RequestBuilder};

use crate::error::Error;
use crate::output::sanitize;

/// How long one API call may take, connection and body included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The `brevetd` API at one address, optionally carrying a session token.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: Agent,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for `server` (`https://host[:port]`) trusting only the CA certificate(s) in
    /// `ca_pem`. Refuses a URL that is not plain HTTPS and a PEM with no usable certificate.
    pub fn new(server: &str, ca_pem: &str, token: Option<String>) -> Result<Client, Error> {
        let base = normalize_server(server)?;
        let tls = crate::tls::config(ca_pem)?;
        let agent: Agent = Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("brevet/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { base, agent, token })
    }

    /// The same server and trust, with another session token.
    pub fn with_token(&self, token: String) -> Client {
        Client {
            token: Some(token),
            ..self.clone()
        }
    }

    /// The session token, if any (to use the same session with another replica).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The normalized server URL (`https://host:port`, no trailing slash).
    pub fn server(&self) -> &str {
        &self.base
    }

    pub fn login(&self, user: &str, password: &str, totp: &str) -> Result<LoginResponse, Error> {
        let body = LoginRequest {
            user: user.to_owned(),
            password: password.to_owned(),
            totp: totp.to_owned(),
        };
        self.post("/v1/login", &body)
    }

    /// Ends the session of the current token on the server.
    pub fn logout(&self) -> Result<(), Error> {
        let path = "/v1/logout";
        let resp = self.send(path, self.agent.post(self.url(path)), |rb| {
            rb.send_json(empty())
        })?;
        self.check(path, resp).map(drop)
    }

    pub fn whoami(&self) -> Result<Whoami, Error> {
        self.get("/v1/whoami", &[])
    }

    pub fn info(&self) -> Result<ServerInfo, Error> {
        self.get("/v1/info", &[])
    }

    pub fn create_request(&self, body: &CreateRequest) -> Result<RequestView, Error> {
        self.post("/v1/requests", body)
    }

    pub fn requests(&self, pending_only: bool) -> Result<Vec<RequestView>, Error> {
        let query: &[(&str, &str)] = if pending_only {
            &[("state", "pending")]
        } else {
            &[]
        };
        self.get("/v1/requests", query)
    }

    /// Up to `limit` (at most 1000) requests and grants, newest first: the listings a report reads.
    pub fn newest(&self, limit: u32) -> Result<(Vec<RequestView>, Vec<GrantView>), Error> {
        let limit = limit.to_string();
        let query = [("limit", limit.as_str())];
        Ok((
            self.get("/v1/requests", &query)?,
            self.get("/v1/grants", &query)?,
        ))
    }

    pub fn request(&self, id: &str) -> Result<RequestView, Error> {
        let id = validate::id("request id", id)?;
        self.get(&format!("/v1/requests/{id}"), &[])
    }

    pub fn approve(&self, id: &str, totp: Option<&str>) -> Result<RequestView, Error> {
        let id = validate::id("request id", id)?;
        let body = ApproveBody {
            totp: totp.map(str::to_owned),
        };
        self.post(&format!("/v1/requests/{id}/approve"), &body)
    }

    pub fn breakglass(
        &self,
        device: &str,
        reason: &str,
        totp: Option<&str>,
    ) -> Result<RequestView, Error> {
        let body = BreakglassBody {
            device: device.to_owned(),
            reason: reason.to_owned(),
            totp: totp.map(str::to_owned),
        };
        self.post("/v1/breakglass", &body)
    }

    pub fn deny(&self, id: &str, reason: &str, totp: Option<&str>) -> Result<RequestView, Error> {
        let id = validate::id("request id", id)?;
        let body = DenyBody {
            reason: reason.to_owned(),
            totp: totp.map(str::to_owned),
        };
        self.post(&format!("/v1/requests/{id}/deny"), &body)
    }

    pub fn cancel(&self, id: &str) -> Result<RequestView, Error> {
        let id = validate::id("request id", id)?;
        self.post(&format!("/v1/requests/{id}/cancel"), &empty())
    }

    pub fn grants(&self, active_only: bool, device: Option<&str>) -> Result<Vec<GrantView>, Error> {
        let mut query = Vec::new();
        if active_only {
            query.push(("active", "true"));
        }
        if let Some(d) = device {
            query.push(("device", d));
        }
        self.get("/v1/grants", &query)
    }

    pub fn grant(&self, id: &str) -> Result<GrantView, Error> {
        let id = validate::id("grant id", id)?;
        self.get(&format!("/v1/grants/{id}"), &[])
    }

    pub fn revoke(&self, id: &str, reason: &str) -> Result<GrantView, Error> {
        let id = validate::id("grant id", id)?;
        let body = ReasonBody {
            reason: reason.to_owned(),
        };
        self.post(&format!("/v1/grants/{id}/revoke"), &body)
    }

    pub fn done(&self, id: &str) -> Result<GrantView, Error> {
        let id = validate::id("grant id", id)?;
        self.post(&format!("/v1/grants/{id}/done"), &empty())
    }

    pub fn add_user(&self, name: &str, groups: &[String]) -> Result<UserCreated, Error> {
        let body = AddUser {
            name: name.to_owned(),
            groups: groups.to_vec(),
        };
        self.post("/v1/users", &body)
    }

    pub fn users(&self) -> Result<Vec<UserView>, Error> {
        self.get("/v1/users", &[])
    }

    pub fn set_user_enabled(&self, name: &str, enabled: bool) -> Result<UserView, Error> {
        let name = validate::user_name(name)?;
        let action = if enabled { "enable" } else { "disable" };
        self.post(&format!("/v1/users/{name}/{action}"), &empty())
    }

    pub fn add_user_group(&self, name: &str, group: &str) -> Result<UserView, Error> {
        let name = validate::user_name(name)?;
        let body = GroupChange {
            group: group.to_owned(),
        };
        self.post(&format!("/v1/users/{name}/groups"), &body)
    }

    pub fn remove_user_group(&self, name: &str, group: &str) -> Result<UserView, Error> {
        let name = validate::user_name(name)?;
        let group = validate::group_name(group)?;
        let path = format!("/v1/users/{name}/groups/{group}");
        let resp = self.send(&path, self.agent.delete(self.url(&path)), |rb| rb.call())?;
        self.decode(&path, resp)
    }

    /// Changes that give power (two-person rule), in `state` or all.
    pub fn privileges(&self, state: Option<&str>) -> Result<Vec<PrivilegeView>, Error> {
        match state {
            Some(s) => self.get("/v1/privileges", &[("state", s)]),
            None => self.get("/v1/privileges", &[]),
        }
    }

    /// A second administrator confirms change `id` (with a fresh TOTP code, or a recent login).
    pub fn confirm_privilege(&self, id: &str, totp: Option<&str>) -> Result<PrivilegeView, Error> {
        let id = validate::id("privilege change id", id)?;
        let body = ConfirmBody {
            totp: totp.map(str::to_owned),
        };
        self.post(&format!("/v1/privileges/{id}/confirm"), &body)
    }

    /// Refuses change `id`; an unconfirmed one is taken back.
    pub fn reject_privilege(&self, id: &str, reason: &str) -> Result<PrivilegeView, Error> {
        let id = validate::id("privilege change id", id)?;
        let body = ReasonBody {
            reason: reason.to_owned(),
        };
        self.post(&format!("/v1/privileges/{id}/reject"), &body)
    }

    /// Whether a restore from backup waits for acknowledgement.
    pub fn restore_status(&self) -> Result<RestoreView, Error> {
        self.get("/v1/restore", &[])
    }

    /// Acknowledges a restore from backup (with a fresh TOTP code, or a recent login).
    pub fn acknowledge_restore(&self, totp: Option<&str>) -> Result<RestoreView, Error> {
        let body = ConfirmBody {
            totp: totp.map(str::to_owned),
        };
        self.post("/v1/restore/acknowledge", &body)
    }

    pub fn add_device(&self, body: &AddDevice) -> Result<DeviceView, Error> {
        self.post("/v1/devices", body)
    }

    pub fn devices(&self) -> Result<Vec<DeviceView>, Error> {
        self.get("/v1/devices", &[])
    }

    pub fn set_device_enabled(&self, name: &str, enabled: bool) -> Result<DeviceView, Error> {
        let name = validate::device_name(name)?;
        let action = if enabled { "enable" } else { "disable" };
        self.post(&format!("/v1/devices/{name}/{action}"), &empty())
    }

    /// A one-time enrollment token for device `name` (admins).
    pub fn enroll_token(&self, name: &str) -> Result<EnrollToken, Error> {
        let name = validate::device_name(name)?;
        self.post(&format!("/v1/devices/{name}/enroll-token"), &empty())
    }

    /// Enrolls a device: the token and the device's public key for a client certificate. Needs
    /// no session; used by tests and tools (the agent has its own client).
    pub fn enroll(&self, body: &EnrollRequest) -> Result<EnrollResponse, Error> {
        self.post("/v1/enroll", body)
    }

    /// Adds a webhook (admins).
    pub fn add_webhook(&self, body: &AddWebhook) -> Result<WebhookView, Error> {
        self.post("/v1/notify/webhooks", body)
    }

    /// Every webhook, without secrets (admins).
    pub fn webhooks(&self) -> Result<Vec<WebhookView>, Error> {
        self.get("/v1/notify/webhooks", &[])
    }

    /// Removes webhook `id` (admins).
    pub fn remove_webhook(&self, id: &str) -> Result<WebhookView, Error> {
        let id = validate::id("webhook id", id)?;
        let path = format!("/v1/notify/webhooks/{id}");
        let resp = self.send(&path, self.agent.delete(self.url(&path)), |rb| rb.call())?;
        self.decode(&path, resp)
    }

    /// The latest standing-privilege report of every device, or of `device`.
    pub fn findings(&self, device: Option<&str>) -> Result<Vec<DeviceFindings>, Error> {
        let device = device.map(validate::device_name).transpose()?;
        let query: Vec<(&str, &str)> = device.iter().map(|d| ("device", d.as_str())).collect();
        self.get("/v1/findings", &query)
    }

    /// One page of the audit trail: events with `seq > after`, at most `limit` of them.
    pub fn audit(&self, after: u64, limit: u32) -> Result<Vec<AuditEventView>, Error> {
        let (after, limit) = (after.to_string(), limit.to_string());
        self.get("/v1/audit", &[("after", &after), ("limit", &limit)])
    }

    /// One page of audit events matching `q`, oldest first.
    pub fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditEventView>, Error> {
        let (after, limit) = (q.after.to_string(), q.limit.to_string());
        let mut query = vec![("after", after.as_str()), ("limit", limit.as_str())];
        let optional = [
            ("since", &q.since),
            ("user", &q.user),
            ("device", &q.device),
            ("ticket", &q.ticket),
            ("grant", &q.grant),
            ("kind", &q.kind),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                query.push((key, v.as_str()));
            }
        }
        self.get("/v1/audit", &query)
    }

    /// The latest signed audit checkpoint (its signature is not checked here).
    pub fn audit_checkpoint(&self) -> Result<Checkpoint, Error> {
        self.get("/v1/audit/checkpoint", &[])
    }

    /// Proof that event `seq` is in the tree of `size` events (default: the latest checkpoint).
    pub fn audit_inclusion(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, Error> {
        let (seq, size) = (seq.to_string(), size.map(|s| s.to_string()));
        let mut query = vec![("seq", seq.as_str())];
        if let Some(s) = &size {
            query.push(("size", s.as_str()));
        }
        self.get("/v1/audit/proof/inclusion", &query)
    }

    /// Proof that the tree of `from` events is a prefix of that of `to` (default: the latest
    /// checkpoint).
    pub fn audit_consistency(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof, Error> {
        let (from, to) = (from.to_string(), to.map(|t| t.to_string()));
        let mut query = vec![("from", from.as_str())];
        if let Some(t) = &to {
            query.push(("to", t.as_str()));
        }
        self.get("/v1/audit/proof/consistency", &query)
    }

    /// The body of a non-JSON endpoint such as `/metrics` or `/v1/openapi.json`.
    pub fn get_text(&self, path: &str) -> Result<String, Error> {
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(Error::BadResponse {
                server: self.base.clone(),
                path: path.to_owned(),
                detail: "the path must start with a single `/`".to_owned(),
            });
        }
        let resp = self.send(path, self.agent.get(self.url(path)), |rb| rb.call())?;
        let mut resp = self.check(path, resp)?;
        resp.body_mut()
            .read_to_string()
            .map_err(|e| self.bad_response(path, e))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, Error> {
        let mut rb = self.agent.get(self.url(path));
        for (k, v) in query {
            rb = rb.query(k, v);
        }
        let resp = self.send(path, rb, |rb| rb.call())?;
        self.decode(path, resp)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Error> {
        let body = serde_json::to_value(body).map_err(|e| self.bad_response(path, e))?;
        let resp = self.send(path, self.agent.post(self.url(path)), |rb| {
            rb.send_json(body)
        })?;
        self.decode(path, resp)
    }

    /// Adds the bearer token, then sends with `finish` (`call` or `send_json`).
    fn send<B>(
        &self,
        path: &str,
        rb: RequestBuilder<B>,
        finish: impl FnOnce(RequestBuilder<B>) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>, Error> {
        let rb = match &self.token {
            Some(t) if valid_token(t) => rb.header("Authorization", format!("Bearer {t}")),
            Some(_) => return Err(Error::BadToken),
            None => rb,
        };
        let rb = rb.header("Accept", "application/json");
        finish(rb).map_err(|e| self.transport(path, e))
    }

    /// Passes a 2xx response through; turns anything else into [`Error::Api`].
    fn check(&self, path: &str, mut resp: Response<Body>) -> Result<Response<Body>, Error> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => Error::Api {
                status,
                code: sanitize(&e.code),
                message: sanitize(&e.message),
            },
            Err(_) => Error::Api {
                status,
                code: "unexpected_response".to_owned(),
                message: format!(
                    "`{}` answered HTTP {status} for `{path}` without an error body",
                    self.base
                ),
            },
        })
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, resp: Response<Body>) -> Result<T, Error> {
        let mut resp = self.check(path, resp)?;
        resp.body_mut()
            .read_json()
            .map_err(|e| self.bad_response(path, e))
    }

    fn transport(&self, path: &str, e: ureq::Error) -> Error {
        let hint = if is_tls(&e) {
            "check that the CA file (--ca or BREVET_CA) is the one that signed the server's certificate"
        } else {
            "check the address (--server or BREVET_SERVER), that brevetd is running there, \
             and the CA file (--ca or BREVET_CA)"
        };
        let detail = match e {
            ureq::Error::Timeout(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
            ureq::Error::Json(e) => return self.bad_response(path, e),
            e => e.to_string(),
        };
        Error::Transport {
            server: self.base.clone(),
            detail: sanitize(&detail),
            hint,
        }
    }

    fn bad_response(&self, path: &str, e: impl std::fmt::Display) -> Error {
        Error::BadResponse {
            server: self.base.clone(),
            path: path.to_owned(),
            detail: sanitize(&e.to_string()),
        }
    }
}

/// Which audit events to ask for (`GET /v1/audit`); `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events with `seq > after`.
    pub after: u64,
    /// At most this many (the server caps it at 10,000).
    pub limit: u32,
    /// RFC 3339: only events at or after this time.
    pub since: Option<String>,
    pub user: Option<String>,
    pub device: Option<String>,
    pub ticket: Option<String>,
    /// A grant id: the grant's events and its request's.
    pub grant: Option<String>,
    pub kind: Option<String>,
}

/// Whether `e` is a failed TLS handshake (as opposed to a server that is not there).
fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// The `{}` body of the actions that take no arguments.
fn empty() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// A token may be sent in a header only if it is visible ASCII without spaces.
fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic())
}

/// Checks that `server` is `https://host[:port]` (an optional trailing `/` is dropped) and
/// returns it without the trailing slash.
pub(crate) fn normalize_server(server: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::ServerUrl {
        url: sanitize(server),
        reason: reason.to_owned(),
    };
    let uri: Uri = server.parse().map_err(|_| bad("it is not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("it must start with `https://`"));
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("it names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad("it must not contain a user name or password"));
    }
    if authority.host().is_empty() {
        return Err(bad("it names no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("it must not contain a path or query"));
    }
    Ok(format!("https://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized_or_refused() {
        assert_eq!(
            normalize_server("https://brevet.example:8443/").unwrap(),
            "https://brevet.example:8443"
        );
        assert_eq!(
            normalize_server("https://127.0.0.1:9").unwrap(),
            "https://127.0.0.1:9"
        );
        for bad in [
            "",
            "brevet.example",
            "http://brevet.example",
            "https://",
            "https://u:p@brevet.example",
            "https://brevet.example/api",
            "https://brevet.example/?x=1",
        ] {
            let err = normalize_server(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid server URL `"), "{bad}: {err}");
        }
    }

    #[test]
    fn tokens_with_spaces_or_controls_are_not_sent() {
        assert!(valid_token("brv_abc.DEF-123"));
        for bad in ["", "a b", "a\nb", "tök"] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn path_segments_are_validated_before_any_request() {
        let ca = brevet_identity::ca::Ca::generate("brevet test ca").unwrap();
        // Port 9 (discard) is never contacted: validation fails first.
        let c = Client::new("https://127.0.0.1:9", ca.cert_pem(), None).unwrap();
        for r in [
            c.request("../users").map(drop),
            c.grant("x").map(drop),
            c.revoke("0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d/../x", "because")
                .map(drop),
            c.set_user_enabled("../x", false).map(drop),
            c.remove_user_group("alice", "a/b").map(drop),
            c.enroll_token("web-01/../x").map(drop),
            c.set_device_enabled("a b", false).map(drop),
            c.findings(Some("-bad")).map(drop),
        ] {
            assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_token() {
        let ca = brevet_identity::ca::Ca::generate("brevet test ca").unwrap();
        let c = Client::new("https://127.0.0.1:9", ca.cert_pem(), Some("secret".into())).unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
