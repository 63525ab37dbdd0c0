//! `brevet.toml`: the server's settings and its roles (DESIGN §4). Unknown keys are errors, and
//! every role is validated when the file is loaded, so a bad role never reaches a grant.

use std::collections::BTreeMap;
use std::path::Path;

use brevet_proto::validate;
use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSettings,
    pub roles: BTreeMap<String, RoleConfig>,
    /// What `brevet breakglass` grants (`docs/breakglass.md`).
    #[serde(default)]
    pub breakglass: BreakglassSettings,
    /// Forwarding of the audit trail to a syslog collector; off when absent (`docs/siem.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogSettings>,
    /// Webhook notifications (`docs/notify.md`).
    #[serde(default)]
    pub notify: NotifySettings,
}

/// `[notify]`: where webhooks may point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// For development only: lets webhooks use plain `http://` and reach loopback, private and
    /// other non-public addresses. Off by default, so a webhook cannot be aimed at the server's
    /// own ports, a cloud metadata service or the internal network.
    pub allow_private_targets: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to serve HTTPS on.
    pub listen: String,
    /// `sqlite://brevet.db` (relative to the data dir) or `postgres://…`.
    pub db: String,
    /// How long a request may wait for approval before it expires.
    pub request_ttl: String,
    /// How long a login session lasts.
    pub session_ttl: String,
    /// How old a second factor may be for approve, deny and break-glass.
    pub step_up_max_age: String,
    /// How long a client may take to complete the TLS handshake.
    pub tls_handshake_timeout: String,
    /// How long a client may take to send a complete request head: from the handshake for the
    /// first request, from its first byte for later ones.
    pub header_read_timeout: String,
    /// How long a connection may stay open with no request in flight and nothing sent.
    pub idle_timeout: String,
    /// Most connections open at once, all kinds (`docs/authentication.md`, "The edge").
    pub max_connections: u32,
    /// Of `max_connections`, the share kept for devices (mutual TLS): anonymous clients never
    /// use it.
    pub device_connections: u32,
    /// Most connections from one source address (an IPv6 /64 counts as one) that have not
    /// presented a device certificate.
    pub max_connections_per_address: u32,
    /// Most connections of one device; a new one ends its oldest.
    pub max_connections_per_device: u32,
    /// A loopback address to serve `/metrics` on in plain HTTP, for a local scraper
    /// (`metrics_listener.rs`); none by default.
    pub metrics_listen: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8443".into(),
            db: crate::db_url::DEFAULT.into(),
            request_ttl: "24h".into(),
            session_ttl: "8h".into(),
            step_up_max_age: "5m".into(),
            tls_handshake_timeout: "10s".into(),
            header_read_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            max_connections: 16384,
            device_connections: 8192,
            max_connections_per_address: 128,
            max_connections_per_device: 4,
            metrics_listen: None,
        }
    }
}

/// `[breakglass]`: the role a break-glass grant carries and how long it lasts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakglassSettings {
    /// A role defined under `[roles]`.
    pub role: String,
    /// At most the role's `max_duration`.
    pub duration: String,
}

impl Default for BreakglassSettings {
    fn default() -> Self {
        BreakglassSettings {
            role: "admin".into(),
            duration: "1h".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketRule {
    Required,
    Optional,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Sudo commands (absolute paths with fixed arguments) or `["ALL"]`.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Unix groups the user joins for the grant (e.g. `docker`).
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "root")]
    pub runas: String,
    pub max_duration: String,
    #[serde(default = "one")]
    pub approvals: u32,
    #[serde(default = "required")]
    pub ticket: TicketRule,
}

fn root() -> String {
    "root".into()
}
fn one() -> u32 {
    1
}
fn required() -> TicketRule {
    TicketRule::Required
}

/// `[syslog]`: RFC 5424 messages over TLS (RFC 5425) to one collector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSettings {
    /// `host:port` of the collector (6514 is the registered port for syslog over TLS).
    pub address: String,
    /// The CA certificate (PEM) that signed the collector's certificate; relative paths are
    /// relative to the data dir. Only this CA is trusted.
    pub ca_file: String,
    /// The name the collector's certificate must carry; the host of `address` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// APP-NAME of every message.
    #[serde(default = "brevet")]
    pub app_name: String,
    /// HOSTNAME of every message; this machine's host name by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The syslog facility: `auth`, `authpriv`, `daemon`, `audit` or `local0`…`local7`.
    #[serde(default = "authpriv")]
    pub facility: String,
    /// The message body: Brevet's own JSON event, or OCSF.
    #[serde(default)]
    pub format: SyslogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    #[default]
    Json,
    Ocsf,
}

fn brevet() -> String {
    "brevet".into()
}
fn authpriv() -> String {
    "authpriv".into()
}

/// Facility names and their codes (RFC 5424 §6.2.1).
const FACILITIES: [(&str, u8); 12] = [
    ("auth", 4),
    ("daemon", 3),
    ("authpriv", 10),
    ("audit", 13),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl SyslogSettings {
    /// The host and port of `address`. An IPv6 address is written in brackets: `[::1]:6514`.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        let bad = || {
            format!(
                "syslog.address `{}`: expected host:port, such as `siem.example.com:6514`",
                self.address
            )
        };
        let (host, port) = self.address.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok((host.to_owned(), port))
    }

    /// The name checked against the collector's certificate.
    pub fn tls_name(&self) -> Result<rustls_pki_types::ServerName<'static>, String> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => self.host_port()?.0,
        };
        rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|_| format!("syslog: `{name}` is not a valid TLS server name"))
    }

    /// The facility code of `facility`.
    pub fn facility_code(&self) -> Result<u8, String> {
        FACILITIES
            .iter()
            .find(|(n, _)| *n == self.facility)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
                format!(
                    "syslog.facility `{}`: use one of {}",
                    self.facility,
                    names.join(", ")
                )
            })
    }

    fn validate(&self) -> Result<(), String> {
        self.host_port()?;
        self.tls_name()?;
        self.facility_code()?;
        if self.ca_file.trim().is_empty() {
            return Err("syslog.ca_file is empty: name the collector's CA certificate".into());
        }
        // RFC 5424 §6: APP-NAME is 1–48 and HOSTNAME 1–255 printable US-ASCII characters.
        let printable = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
        };
        if !printable(&self.app_name, 48) {
            return Err(format!(
                "syslog.app_name `{}`: use 1 to 48 printable ASCII characters, no spaces",
                self.app_name
            ));
        }
        if let Some(h) = &self.hostname
            && !printable(h, 255)
        {
            return Err(format!(
                "syslog.hostname `{h}`: use 1 to 255 printable ASCII characters, no spaces"
            ));
        }
        Ok(())
    }
}

/// Durations from the config, parsed once.
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    pub request_ttl: i64,
    pub session_ttl: i64,
    pub step_up_max_age: i64,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| Error::Config(format!("`{}`: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.durations()?;
        crate::db_url::check(&self.server.db).map_err(|e| format!("server.db: {e}"))?;
        crate::edge::Limits::from_settings(&self.server)?;
        if self.roles.is_empty() {
            return Err("no roles are defined".into());
        }
        for (name, role) in &self.roles {
            let ctx = |e: brevet_proto::Error| format!("role `{name}`: {e}");
            validate::role_name(name).map_err(ctx)?;
            if role.commands.is_empty() && role.groups.is_empty() {
                return Err(format!("role `{name}` grants neither commands nor groups"));
            }
            if role.commands.iter().any(|c| c == "ALL") && role.commands.len() > 1 {
                return Err(format!("role `{name}`: `ALL` must be the only command"));
            }
            for c in &role.commands {
                validate::command(c, true).map_err(ctx)?;
            }
            for g in &role.groups {
                validate::group_name(g).map_err(ctx)?;
            }
            validate::user_name(&role.runas).map_err(ctx)?;
            validate::duration(&role.max_duration).map_err(ctx)?;
            if role.approvals == 0 || role.approvals > 10 {
                return Err(format!(
                    "role `{name}`: approvals must be 1 to 10 (use an auto_approve policy to skip approval)"
                ));
            }
        }
        if let Some(syslog) = &self.syslog {
            syslog.validate()?;
        }
        let bg = &self.breakglass;
        let duration =
            validate::duration(&bg.duration).map_err(|e| format!("breakglass.duration: {e}"))?;
        // The role may be missing (break-glass is then refused, saying why); if it exists, the
        // break-glass window stays within it.
        if let Some(role) = self.roles.get(&bg.role)
            && duration > validate::duration(&role.max_duration).map_err(|e| e.to_string())?
        {
            return Err(format!(
                "breakglass.duration `{}` is longer than role `{}` allows ({})",
                bg.duration, bg.role, role.max_duration
            ));
        }
        Ok(())
    }

    pub fn durations(&self) -> Result<Durations, String> {
        let d = |field: &str, v: &str| {
            validate::duration(v)
                .map(|s| s as i64)
                .map_err(|e| format!("server.{field}: {e}"))
        };
        Ok(Durations {
            request_ttl: d("request_ttl", &self.server.request_ttl)?,
            session_ttl: d("session_ttl", &self.server.session_ttl)?,
            step_up_max_age: d("step_up_max_age", &self.server.step_up_max_age)?,
        })
    }

    /// The configuration `brevetd init` writes (DESIGN §4).
    /// The configuration `brevetd init` writes, serving on `listen` from the database `db`.
    pub fn default_text(listen: &str, db: &str) -> String {
        // A TOML basic string, escaped by the TOML writer.
        let db = toml::Value::String(db.to_owned()).to_string();
        format!(
            r#"# Brevet server configuration. Unknown keys are errors.

[server]
listen = "{listen}"
# sqlite://FILE (relative to the data dir) or postgres://user@host/db
db = {db}
request_ttl = "24h"       # an undecided request expires after this
session_ttl = "8h"        # `brevet login` sessions
step_up_max_age = "5m"    # approve/deny/break-glass need a second factor this fresh
# The edge (docs/authentication.md): timeouts and connection caps against idle floods.
tls_handshake_timeout = "10s"
header_read_timeout = "10s"       # a request head must arrive within this
idle_timeout = "60s"              # keep-alive connections with nothing in flight
max_connections = 16384           # all connections; brevetd lowers it to fit its open-file limit
device_connections = 8192         # of those, kept for devices (mutual TLS): >= agents served
max_connections_per_address = 128 # not yet a device; raise behind a NAT or L4 load balancer
max_connections_per_device = 4    # a device's newest connection ends its oldest
# metrics_listen = "127.0.0.1:9464" # /metrics in plain HTTP for a local scraper (loopback only);
#                                   # over HTTPS /metrics needs a session allowed read_metrics

# A role is what a person can ask for. `commands` are absolute paths with fixed
# arguments (a bare path allows any arguments, as in sudoers) or ["ALL"].
# `approvals` distinct approvers are needed, never the requester.

[roles.admin]
commands = ["ALL"]
runas = "root"
max_duration = "1h"
approvals = 1
ticket = "required"

[roles.pkg-update]
commands = ["/usr/bin/apt-get update", "/usr/bin/apt-get upgrade"]
runas = "root"
max_duration = "2h"
approvals = 1
ticket = "optional"

# `brevet breakglass`: members of `breakglass` (policy) take this role at once, with a
# fresh second factor and no approver; every use raises alert.breakglass_used.
[breakglass]
role = "admin"
duration = "1h"

# Webhooks (`brevet notify add`) go to https:// on public addresses only. For development
# against a local receiver only (plain http://, loopback and private addresses):
# [notify]
# allow_private_targets = true

# Forward every audit event to a syslog collector over TLS (docs/siem.md).
# [syslog]
# address = "siem.example.com:6514"
# ca_file = "siem-ca.pem"      # the collector's CA, relative to the data dir
# format = "ocsf"              # or "json" (Brevet's own event)
"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = Config::parse(&Config::default_text(
            "127.0.0.1:8443",
            crate::db_url::DEFAULT,
        ))
        .unwrap();
        assert_eq!(c.roles["admin"].commands, ["ALL"]);
        assert_eq!(c.roles["pkg-update"].approvals, 1);
        assert_eq!(c.durations().unwrap().step_up_max_age, 300);
    }

    #[test]
    fn unknown_keys_and_bad_roles_are_errors() {
        let base = Config::default_text("127.0.0.1:8443", crate::db_url::DEFAULT);
        assert!(
            Config::parse(&format!(
                "{base}\n[roles.x]\ncommands=[\"/bin/id\"]\nmax_duration=\"1h\"\nfoo=1\n"
            ))
            .is_err()
        );
        assert!(Config::parse(&base.replace("listen =", "lisen =")).is_err());
        for (bad, why) in [
            ("commands = [\"/bin/*\"]", "wildcard"),
            ("commands = [\"/bin/id\", \"ALL\"]", "ALL mixed"),
            ("commands = [\"/bin/sh -c x;y\"]", "metachar"),
        ] {
            let text = format!("[roles.x]\n{bad}\nmax_duration = \"1h\"\n");
            assert!(Config::parse(&text).is_err(), "{why}");
        }
        assert!(Config::parse("[roles.x]\ncommands=[\"/bin/id\"]\nmax_duration=\"0m\"\n").is_err());
        assert!(
            Config::parse("[roles.x]\ncommands=[\"/bin/id\"]\nmax_duration=\"1h\"\napprovals=0\n")
                .is_err()
        );
        assert!(
            Config::parse(
                "[roles.x]\ncommands=[\"/bin/id\"]\nmax_duration=\"1h\"\nrunas=\"ALL\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn notify_section() {
        let base = Config::default_text("127.0.0.1:8443", crate::db_url::DEFAULT);
        assert!(!Config::parse(&base).unwrap().notify.allow_private_targets);
        let dev = Config::parse(&format!("{base}\n[notify]\nallow_private_targets = true\n"));
        assert!(dev.unwrap().notify.allow_private_targets);
        assert!(Config::parse(&format!("{base}\n[notify]\nallow_private = true\n")).is_err());
    }

    #[test]
    fn syslog_section() {
        let base = Config::default_text("127.0.0.1:8443", crate::db_url::DEFAULT);
        assert!(Config::parse(&base).unwrap().syslog.is_none());
        let c = Config::parse(&format!(
            "{base}\n[syslog]\naddress = \"siem.example.com:6514\"\nca_file = \"ca.pem\"\n"
        ))
        .unwrap();
        let s = c.syslog.unwrap();
        assert_eq!(s.host_port().unwrap(), ("siem.example.com".into(), 6514));
        assert_eq!(
            (s.app_name.as_str(), s.format),
            ("brevet", SyslogFormat::Json)
        );
        assert_eq!(s.facility_code().unwrap(), 10);
        let ok = |extra: &str| {
            let text = format!("{base}\n[syslog]\nca_file = \"ca.pem\"\n{extra}\n");
            Config::parse(&text).map(|c| c.syslog.unwrap())
        };
        let v6 = ok("address = \"[::1]:6514\"\nformat = \"ocsf\"\nfacility = \"local3\"").unwrap();
        assert_eq!(v6.host_port().unwrap(), ("::1".into(), 6514));
        assert_eq!(
            (v6.format, v6.facility_code().unwrap()),
            (SyslogFormat::Ocsf, 19)
        );
        for (bad, why) in [
            ("address = \"siem.example.com\"", "no port"),
            ("address = \"siem:0\"", "port 0"),
            ("address = \":6514\"", "no host"),
            ("address = \"siem:6514\"\nformat = \"cef\"", "format"),
            ("address = \"siem:6514\"\nfacility = \"mail\"", "facility"),
            (
                "address = \"siem:6514\"\napp_name = \"bre vet\"",
                "app_name",
            ),
            ("address = \"siem:6514\"\nhostname = \"\"", "hostname"),
            (
                "address = \"siem:6514\"\nserver_name = \"not a name\"",
                "server_name",
            ),
            ("address = \"siem:6514\"\ncolour = \"red\"", "unknown key"),
        ] {
            assert!(ok(bad).is_err(), "{why}");
        }
        let no_ca = format!("{base}\n[syslog]\naddress = \"siem:6514\"\n");
        assert!(Config::parse(&no_ca).is_err());
    }
}
