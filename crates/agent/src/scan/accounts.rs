//! Local accounts from `/etc/passwd` and `/etc/group`, and the account findings that need
//! nothing else: UID 0 accounts other than `root` and keys in root's `authorized_keys`.
//!
//! Parsing is lenient: malformed lines, NIS compat lines (`+`/`-`) and comments are skipped, a
//! non-numeric id is treated as unknown, never as 0.

use brevet_proto::agent::{Finding, Severity};

use super::{files, finding, scan_error};
use crate::root::Root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub name: String,
    pub gid: Option<u32>,
    pub members: Vec<String>,
}

/// How a user belongs to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// Named in the group's member list in `/etc/group` (supplementary).
    Listed,
    /// The group is the user's primary group (gid field of `/etc/passwd`).
    Primary,
    Both,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|n| !n.is_empty()))
}

impl Accounts {
    pub(crate) fn parse(passwd: &str, group: &str) -> Accounts {
        let field = |f: &[&str], i: usize| f.get(i).copied().unwrap_or("").to_string();
        let id = |f: &[&str], i: usize| f.get(i).and_then(|s| s.trim().parse::<u32>().ok());
        let users = records(passwd)
            .map(|f| User {
                name: field(&f, 0),
                uid: id(&f, 2),
                gid: id(&f, 3),
                home: field(&f, 5),
            })
            .collect();
        let groups = records(group)
            .map(|f| Group {
                name: field(&f, 0),
                gid: id(&f, 2),
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Accounts { users, groups }
    }

    /// Everyone in `group` (every `/etc/group` line of that name counts), sorted by name.
    pub(crate) fn members(&self, group: &str) -> Vec<(String, Via)> {
        let mut out: Vec<(String, Via)> = Vec::new();
        let mut add = |name: &str, via: Via| match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) if *v != via => *v = Via::Both,
            Some(_) => {}
            None => out.push((name.to_string(), via)),
        };
        for g in self.groups.iter().filter(|g| g.name == group) {
            for m in &g.members {
                add(m, Via::Listed);
            }
            if let Some(gid) = g.gid {
                for u in self.users.iter().filter(|u| u.gid == Some(gid)) {
                    add(&u.name, Via::Primary);
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub(crate) fn group_by_gid(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == Some(gid))
            .map(|g| g.name.as_str())
    }

    pub(crate) fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == Some(uid))
    }

    /// Reads both files; a file that cannot be read becomes a `scan_error` finding.
    pub(crate) fn load(root: &Root, out: &mut Vec<Finding>) -> Accounts {
        let mut read = |sys: &str| match files::read_text(root, &root.path(sys)) {
            Ok(text) => text.unwrap_or_default(),
            Err(e) => {
                out.push(scan_error(sys, &e));
                String::new()
            }
        };
        let passwd = read("/etc/passwd");
        let group = read("/etc/group");
        Accounts::parse(&passwd, &group)
    }
}

/// `uid0_account`: any account other than `root` whose UID is 0 is root under another name.
pub(crate) fn uid0_findings(acc: &Accounts, out: &mut Vec<Finding>) {
    for u in acc
        .users
        .iter()
        .filter(|u| u.uid == Some(0) && u.name != "root")
    {
        out.push(finding(
            format!("uid0-account:{}", u.name),
            super::KIND_UID0_ACCOUNT,
            Severity::Critical,
            &u.name,
            format!(
                "`{}` has UID 0 in /etc/passwd: it is root under another name, with no sudo rule \
                 or log entry needed",
                u.name
            ),
            format!(
                "give `{0}` its own UID (`usermod -u NEW_UID {0}`) or remove it (`userdel {0}`); \
                 root access goes through Brevet grants",
                u.name
            ),
        ));
    }
}

/// `root_authorized_keys`: one finding per non-empty key file of root, with the key count only.
pub(crate) fn root_key_findings(root: &Root, acc: &Accounts, out: &mut Vec<Finding>) {
    let mut homes = vec!["/root".to_string()];
    if let Some(u) = acc.users.iter().find(|u| u.name == "root") {
        let home = u.home.trim_end_matches('/');
        let safe = home.starts_with('/') && !home.split('/').any(|c| c == "..");
        if safe && !homes.iter().any(|h| h == home) {
            homes.push(home.to_string());
        }
    }
    for home in homes {
        for file in ["authorized_keys", "authorized_keys2"] {
            let sys = format!("{home}/.ssh/{file}");
            let text = match files::read_text(root, &root.path(&sys)) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    out.push(scan_error(&sys, &e));
                    continue;
                }
            };
            let keys = count_keys(&text);
            if keys == 0 {
                continue;
            }
            out.push(finding(
                format!("root-authorized-keys:{sys}"),
                super::KIND_ROOT_AUTHORIZED_KEYS,
                Severity::High,
                "root",
                format!("`{sys}` holds {keys} key(s) that log in as root directly"),
                format!(
                    "remove the keys from `{sys}`, set `PermitRootLogin no` in sshd_config, and \
                     log in as a named user who requests root through Brevet"
                ),
            ));
        }
    }
}

/// Lines that are neither blank nor comments (an options prefix still makes one key).
fn count_keys(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        toor:x:00:0::/root:/bin/sh\n\
        alice:x:1000:1000::/home/alice:/bin/bash\n\
        bob:x:1001:999::/home/bob:/bin/bash\n\
        broken\n\
        +nis::::::\n\
        weird:x:notanumber:zz::/:\n";
    const GROUP: &str = "root:x:0:\n\
        sudo:x:27:alice, carol,,\n\
        docker:x:999:alice\n\
        # comment\n\
        sudo:x:27:dave\n";

    #[test]
    fn parses_leniently() {
        let a = Accounts::parse(PASSWD, GROUP);
        assert_eq!(a.users.len(), 6); // `broken` has a name; the NIS line is skipped
        assert_eq!(a.users[1].uid, Some(0));
        assert_eq!(a.users[5].uid, None);
        assert_eq!(
            a.members("sudo"),
            vec![
                ("alice".to_string(), Via::Listed),
                ("carol".to_string(), Via::Listed),
                ("dave".to_string(), Via::Listed),
            ]
        );
        assert_eq!(
            a.members("docker"),
            vec![
                ("alice".to_string(), Via::Listed),
                ("bob".to_string(), Via::Primary),
            ]
        );
        assert_eq!(
            a.members("root"),
            vec![
                ("root".to_string(), Via::Primary),
                ("toor".to_string(), Via::Primary),
            ]
        );
        assert!(a.members("nosuch").is_empty());
        assert_eq!(a.group_by_gid(27), Some("sudo"));
    }

    #[test]
    fn uid0_only_for_non_root() {
        let mut out = Vec::new();
        uid0_findings(&Accounts::parse(PASSWD, GROUP), &mut out);
        let ids: Vec<_> = out.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["uid0-account:toor"]);
    }

    #[test]
    fn counts_keys_without_comments() {
        assert_eq!(
            count_keys("# c\n\nssh-ed25519 AAAA x\nfrom=\"10.0.0.1\" ssh-rsa B y\n"),
            2
        );
        assert_eq!(count_keys("   \n# only\n"), 0);
    }
}
