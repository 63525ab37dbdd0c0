//! Names a Brevet person or device must never take (DESIGN §10): local system accounts, the
//! accounts distributions and cloud images create for their first user, and sudoers' reserved
//! words. A Brevet person becomes a user name in a sudoers drop-in on every device it is granted
//! on, so a person named `root`, `daemon` or `admin` (the sudo-capable first user of Debian cloud
//! images) would elevate a local account that is somebody else's.
//!
//! Checked when a person or device is created; an account that exists already keeps working.
//! The agent checks again against the device's own accounts (UID 0, UIDs below `UID_MIN`).

use crate::Error;

/// System and well-known first-user accounts.
const ACCOUNTS: &[&str] = &[
    "root",
    "toor",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "nogroup",
    "messagebus",
    "sshd",
    "syslog",
    "polkitd",
    "postgres",
    "mysql",
    "redis",
    "nginx",
    "apache",
    "httpd",
    "ftp",
    "tss",
    "dnsmasq",
    "avahi",
    "colord",
    "chrony",
    "ntp",
    "rpc",
    "rpcuser",
    "nfsnobody",
    "dbus",
    "uuidd",
    "tcpdump",
    "lxd",
    "docker",
    "halt",
    "shutdown",
    "operator",
    "adm",
    "sudo",
    "wheel",
    "staff",
    "admin",
    "administrator",
    "ubuntu",
    "debian",
    "ec2-user",
    "centos",
    "fedora",
    "rocky",
    "almalinux",
    "cloud-user",
    "azureuser",
    "opc",
    "pi",
    "vagrant",
    "core",
    "guest",
    "user",
    "brevet",
];

/// sudoers keywords (sudo matches them case-sensitively in upper case; refused in any case).
const SUDOERS_WORDS: &[&str] = &[
    "all",
    "defaults",
    "include",
    "includedir",
    "user_alias",
    "runas_alias",
    "host_alias",
    "cmnd_alias",
    "cmd_alias",
    "nopasswd",
    "passwd",
    "setenv",
    "noexec",
    "exec",
    "localhost",
];

/// Why `name` is reserved, or `None` when it is free to use.
pub fn reserved(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if ACCOUNTS.contains(&lower.as_str()) {
        return Some("it is the name of a system account or of a distribution's first user");
    }
    if SUDOERS_WORDS.contains(&lower.as_str()) {
        return Some("it is a sudoers keyword");
    }
    if lower.starts_with('_') || lower.starts_with("systemd-") {
        return Some("names starting with `_` or `systemd-` belong to system services");
    }
    None
}

/// A name for a new Brevet person: a Unix user name that is not reserved.
pub fn new_person_name(s: &str) -> Result<&str, Error> {
    let name = super::user_name(s)?;
    match reserved(name) {
        Some(why) => Err(Error::invalid(
            "user name",
            s,
            format!("reserved: {why}; choose a personal name"),
        )),
        None => Ok(name),
    }
}

/// A name for a new device: a host name that is not reserved.
pub fn new_device_name(s: &str) -> Result<String, Error> {
    let name = super::device_name(s)?;
    match reserved(&name) {
        Some(why) => Err(Error::invalid(
            "device name",
            s,
            format!("reserved: {why}; use the device's host name"),
        )),
        None => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_accounts_and_sudoers_words_are_refused() {
        for name in [
            "root",
            "daemon",
            "admin",
            "nobody",
            "www-data",
            "_apt",
            "systemd-network",
            "ubuntu",
            "ec2-user",
            "brevet",
            "all",
            "defaults",
        ] {
            let e = new_person_name(name).unwrap_err().to_string();
            assert!(e.contains("reserved"), "{name}: {e}");
        }
        for name in ["ALL", "localhost", "root"] {
            assert!(new_device_name(name).is_err(), "{name}");
        }
        for name in ["alice", "brevet-admin", "admins2", "rooted"] {
            assert_eq!(new_person_name(name), Ok(name));
        }
        assert_eq!(new_device_name("web-01").unwrap(), "web-01");
    }
}
