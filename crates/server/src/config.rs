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
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8443".into(),
            db: "sqlite://brevet.db".into(),
            request_ttl: "24h".into(),
            session_ttl: "8h".into(),
            step_up_max_age: "5m".into(),
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
    pub fn default_text(listen: &str) -> String {
        format!(
            r#"# Brevet server configuration. Unknown keys are errors.

[server]
listen = "{listen}"
# sqlite://FILE (relative to the data dir) or postgres://user@host/db
db = "sqlite://brevet.db"
request_ttl = "24h"       # an undecided request expires after this
session_ttl = "8h"        # `brevet login` sessions
step_up_max_age = "5m"    # approve/deny/break-glass need a second factor this fresh

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
"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = Config::parse(&Config::default_text("127.0.0.1:8443")).unwrap();
        assert_eq!(c.roles["admin"].commands, ["ALL"]);
        assert_eq!(c.roles["pkg-update"].approvals, 1);
        assert_eq!(c.durations().unwrap().step_up_max_age, 300);
    }

    #[test]
    fn unknown_keys_and_bad_roles_are_errors() {
        let base = Config::default_text("127.0.0.1:8443");
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
}
