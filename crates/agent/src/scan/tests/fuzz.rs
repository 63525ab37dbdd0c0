//! Garbage in, no panic out: the lexer, the account parser and whole scans over random trees.

use super::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    /// Garbage biased towards sudoers syntax: keywords, separators, escapes, raw bytes.
    fn garbage(&mut self, len: usize) -> Vec<u8> {
        const TOKENS: &[&str] = &[
            "Defaults",
            ":",
            "@",
            "!",
            ">",
            "%",
            "#",
            "#include",
            "@includedir",
            " ",
            "\t",
            "\\",
            "\\\n",
            "\n",
            "\r\n",
            "\"",
            ",",
            "=",
            "+=",
            "(",
            ")",
            "ALL",
            "NOPASSWD",
            "root",
            "authenticate",
            "timestamp_timeout",
            "tty_tickets",
            "timestamp_type=global",
            "1",
            "é",
            "\u{202e}",
            "User_Alias",
            "..",
            "/",
            "%h",
            "brevet_",
        ];
        let mut out = Vec::new();
        while out.len() < len {
            match self.next() % 5 {
                0 => out.push((self.next() & 0xff) as u8),
                _ => out.extend_from_slice(self.pick(TOKENS).as_bytes()),
            }
        }
        out
    }
}

#[test]
fn parsing_never_panics_on_garbage() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let len = (g.next() % 200) as usize;
        let bytes = g.garbage(len);
        let text = String::from_utf8_lossy(&bytes);
        for l in lexer::logical_lines(&text) {
            if let lexer::Entry::UserSpec { rest, .. } = lexer::classify(&l.text) {
                let _ = lexer::has_tag(rest, "NOPASSWD");
                let _ = lexer::grants_all_commands(rest);
            }
        }
        let _ = accounts::Accounts::parse(&text, &text);
        let _ = timestamps::sudo_live_records(&bytes);
        let _ = show(&text);
    }
    // And whole scans over trees of garbage files.
    for round in 0..40 {
        let t = Tree::new();
        for sys in [
            "/etc/passwd",
            "/etc/group",
            "/etc/sudoers",
            "/etc/sudoers.d/a",
            "/etc/sudoers.d/b",
            "/root/.ssh/authorized_keys",
            "/run/sudo/ts/x",
            "/var/run/sudo-rs/ts/0",
        ] {
            t.write(sys, g.garbage(400));
        }
        let findings = scan(&t.root(), &Allowlist::default());
        let (_, _) = remediate_at(
            &t.root(),
            &findings,
            &Allowlist::default(),
            &t.dir.path().join("q"),
            &|_, _| Ok(()),
            round,
        );
        assert!(t.read("/etc/sudoers").is_some(), "never moves /etc/sudoers");
    }
}
