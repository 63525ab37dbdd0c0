//! An owned query, so tests can describe a case as data and borrow a `Query`.
#![allow(
    dead_code,
    reason = "shared by several test crates, each using only some helpers; `expect` would be unfulfilled in some"
)]

use std::collections::BTreeMap;

use brevet_policy::{Action, Context, PrincipalKind, Query};

#[derive(Debug, Clone)]
pub struct Case {
    pub user: String,
    pub groups: Vec<String>,
    pub kind: PrincipalKind,
    pub action: Action,
    pub device: String,
    pub device_groups: Vec<String>,
    pub device_tags: BTreeMap<String, String>,
    pub device_os: String,
    pub role: String,
    pub context: Context,
}

impl Case {
    /// `user` in `groups` asks to do `action` with role `admin` on a test device.
    pub fn new(user: &str, groups: &[&str], action: Action) -> Case {
        Case {
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kind: PrincipalKind::Human,
            action,
            device: "web-1".to_string(),
            device_groups: vec!["web".to_string()],
            device_tags: BTreeMap::from([("env".to_string(), "test".to_string())]),
            device_os: "linux".to_string(),
            role: "admin".to_string(),
            context: Context {
                duration_seconds: 1800,
                hour_utc: 10,
                weekday: "tue".to_string(),
                ..Context::default()
            },
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Case {
        self.device_tags.insert(key.to_string(), value.to_string());
        self
    }

    pub fn duration(mut self, seconds: i64) -> Case {
        self.context.duration_seconds = seconds;
        self
    }

    pub fn query(&self) -> Query<'_> {
        Query {
            user: &self.user,
            groups: &self.groups,
            kind: self.kind,
            action: self.action,
            device: &self.device,
            device_groups: &self.device_groups,
            device_tags: &self.device_tags,
            device_os: &self.device_os,
            role: &self.role,
            context: &self.context,
        }
    }
}
