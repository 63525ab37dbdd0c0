//! End-to-end tests of the scan and enforce mode over a fake tree in a tempdir: the fixture
//! here, the tests by topic in the submodules.

mod enforce;
mod findings;
mod fuzz;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use brevet_proto::agent::{Finding, Severity};

use super::timestamps::sudo_record;
use super::*;
use crate::Error;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
syslog:x:104:110::/home/syslog:/usr/sbin/nologin
toor:x:0:0:backdoor:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:1001:Bob:/home/bob:/bin/bash
carol:x:1002:999::/home/carol:/bin/bash
ops:x:1003:1003::/home/ops:/bin/bash
bg:x:1004:1004::/home/bg:/bin/bash
deploy:x:1005:1005::/home/deploy:/bin/bash
";

const GROUP: &str = "\
root:x:0:
adm:x:4:syslog,alice
disk:x:6:
sudo:x:27:alice,bg,ops
shadow:x:42:
users:x:100:dave
docker:x:999:bob
lxd:x:998:
alice:x:1000:
";

/// Ubuntu's /etc/sudoers as shipped (Debian's lacks the `%admin` line).
const SUDOERS: &str = r#"#
# This file MUST be edited with the 'visudo' command as root.
#
# Please consider adding local content in /etc/sudoers.d/ instead of
# directly modifying this file.
#
# See the man page for details on how to write a sudoers file.
#
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"

# This fixes CVE-2005-4890 and possibly breaks some versions of kdesu
# (https://bugs.kde.org/show_bug.cgi?id=452532)
Defaults	use_pty

# This preserves proxy settings from user environments of root
# equivalent users (group sudo)
#Defaults:%sudo env_keep += "http_proxy https_proxy ftp_proxy all_proxy no_proxy"

# This allows running arbitrary commands, but so does ALL, and it means
# different sudoers have their choice of editor respected.
#Defaults:%sudo env_keep += "EDITOR"

# Host alias specification

# User alias specification

# Cmnd alias specification

# User privilege specification
root	ALL=(ALL:ALL) ALL

# Members of the admin group may gain root privileges
%admin ALL=(ALL) ALL

# Allow members of group sudo to execute any command
%sudo	ALL=(ALL:ALL) ALL

# See sudoers(5) for more information on "@include" directives:

@includedir /etc/sudoers.d
"#;

const CI: &str = "# CI runner, added by hand\n\
Defaults:ci \\\n    !authenticate\n\
ci ALL=(root) /usr/bin/systemctl restart app, \\\n   /usr/bin/journalctl\n\
Defaults timestamp_timeout=30, !tty_tickets\n";

const KEYS: &str = "# laptop\n\
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyMaterialOne admin@laptop\n\
from=\"10.0.0.0/8\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABFakeKeyMaterialTwo ci@runner\n";

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn root(&self) -> Root {
        Root::new(self.dir.path())
    }

    fn write(&self, sys: &str, content: impl AsRef<[u8]>) {
        let p = self.root().path(sys);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    fn read(&self, sys: &str) -> Option<Vec<u8>> {
        fs::read(self.root().path(sys)).ok()
    }

    /// The standard fake endpoint: every kind of finding, plus files that must be ignored.
    fn standard() -> Tree {
        let t = Tree::new();
        t.write("/etc/passwd", PASSWD);
        t.write("/etc/group", GROUP);
        t.write("/etc/sudoers", SUDOERS);
        t.write(
            "/etc/sudoers.d/README",
            "# As of Debian version 1.7.2p1-1, the default /etc/sudoers file created on\n\
             # installation of the package now includes the directive:\n#\n\
             # \t#includedir /etc/sudoers.d\n",
        );
        t.write(
            "/etc/sudoers.d/90-deploy",
            "# deploy bot\ndeploy ALL=(ALL) NOPASSWD: ALL\n",
        );
        t.write("/etc/sudoers.d/50-ci", CI);
        t.write("/etc/sudoers.d/ops", "ops ALL=(ALL) ALL\n");
        t.write("/etc/sudoers.d/bg-rule", "bg ALL=(ALL:ALL) ALL\n");
        t.write("/etc/sudoers.d/old.bak", "evil ALL=(ALL) NOPASSWD: ALL\n");
        // sudo's `#includedir` does not descend into subdirectories.
        t.write("/etc/sudoers.d/sub/x", "evil ALL=(ALL) NOPASSWD: ALL\n");
        t.write(
            "/etc/sudoers.d/90-deploy~",
            "evil ALL=(ALL) NOPASSWD: ALL\n",
        );
        t.write(
            "/etc/sudoers.d/brevet_0123456789abcdef0123456789abcdef",
            "Defaults:alice timestamp_timeout=0\nalice ALL=(root) /usr/bin/apt-get update\n",
        );
        t.write("/root/.ssh/authorized_keys", KEYS);
        t.write("/root/.ssh/authorized_keys2", "# nothing here\n");
        let mut alice = sudo_record(4, 0, 0);
        alice.extend(sudo_record(2, 0, 5_000));
        t.write("/run/sudo/ts/alice", alice);
        t.write("/run/sudo/ts/bob", sudo_record(2, 0x01, 5_000)); // `sudo -k`: disabled
        t.write("/var/run/sudo-rs/ts/1001", [1u8, 2, 3]);
        t
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(needle))
        .map(|i| i + 1)
        .expect("needle in text")
}

fn summary(findings: &[Finding]) -> Vec<(String, String, Severity)> {
    findings
        .iter()
        .map(|f| (f.id.clone(), f.kind.clone(), f.severity))
        .collect()
}
