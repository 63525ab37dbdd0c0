//! Loading policy files: what is accepted, what is rejected, and how the
//! rejection reads.

use brevet_policy::{DEFAULT_POLICY, Engine, Error, SCHEMA, check};

#[test]
fn check_counts_policies() {
    let cases = [
        ("", 0),
        ("// only a comment\n", 0),
        (DEFAULT_POLICY, 6),
        ("permit (principal, action, resource);", 1),
        (
            r#"@id("a") permit (principal, action, resource);
               @id("b") forbid (principal, action == Action::"breakglass", resource);"#,
            2,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(check(src), Ok(want), "{src}");
    }
}

#[test]
fn empty_policy_denies_everything() {
    let engine = Engine::new("").expect("valid");
    assert!(engine.is_empty());
}

/// Each case: the policy text, a predicate on the error, and fragments the
/// message must contain.
#[test]
fn rejected_policies_read_well() {
    type Case = (&'static str, fn(&Error) -> bool, &'static [&'static str]);
    let cases: &[Case] = &[
        (
            "@id(\"ok\") permit (principal, action, resource);\n\npermit (principal, action resource);\n",
            |e| matches!(e, Error::Syntax(_)),
            &["syntax error", "line 3"],
        ),
        (
            "@id(\"ok\")\npermit (principal, action, resource);\n\n@id(\"bad-attr\")\npermit (principal, action, resource)\nwhen { principal.nosuchattr == \"x\" };\n",
            |e| matches!(e, Error::Schema(_)),
            &[
                "does not match the brevet schema",
                "policy `bad-attr` (line 6)",
                "nosuchattr",
            ],
        ),
        (
            "@id(\"bad-type\") permit (principal, action, resource) when { context.duration_seconds == \"long\" };",
            |e| matches!(e, Error::Schema(_)),
            &["policy `bad-type` (line 1)"],
        ),
        (
            "@id(\"no-guard\") permit (principal, action, resource) when { resource.getTag(\"env\") == \"prod\" };",
            |e| matches!(e, Error::Schema(_)),
            &["policy `no-guard`", "env"],
        ),
        (
            "@id(\"bad-entity\") permit (principal in Team::\"ops\", action, resource);",
            |e| matches!(e, Error::Schema(_)),
            &["policy `bad-entity`", "Team"],
        ),
        (
            "@id(\"bad-action\") permit (principal, action == Action::\"delete\", resource);",
            |e| matches!(e, Error::Schema(_)),
            &["policy `bad-action`", "delete"],
        ),
        (
            "@id(\"same\") permit (principal, action, resource);\n@id(\"same\") forbid (principal, action, resource);",
            |e| matches!(e, Error::DuplicateId { .. }),
            &["`same` is used twice"],
        ),
        (
            "@id(\"\") permit (principal, action, resource);",
            |e| matches!(e, Error::EmptyId { .. }),
            &["empty @id"],
        ),
        (
            "@id(\"tpl\") permit (principal == ?principal, action, resource);",
            |e| matches!(e, Error::Template { .. }),
            &["policy `tpl` is a template"],
        ),
    ];
    for (src, is_kind, fragments) in cases {
        let err = match Engine::new(src) {
            Ok(_) => panic!("accepted: {src}"),
            Err(e) => e,
        };
        let msg = err.to_string();
        println!("{msg}");
        assert!(is_kind(&err), "wrong kind {err:?} for {src}");
        assert!(!msg.contains('\n'), "message spans lines: {msg}");
        for f in *fragments {
            assert!(msg.contains(f), "`{msg}` lacks `{f}`");
        }
        // Compare kinds only: Cedar's "did you mean" suggestion may vary between runs.
        let check_kind = check(src).map_err(|e| std::mem::discriminant(&e));
        assert_eq!(
            check_kind,
            Err(std::mem::discriminant(&err)),
            "check agrees with Engine::new"
        );
    }
}

#[test]
fn schema_is_what_the_docs_say() {
    for word in [
        "entity User in [Group]",
        "entity Device in [DeviceGroup]",
        "tags String",
        "action request, approve, breakglass, auto_approve",
    ] {
        assert!(SCHEMA.contains(word), "{word}");
    }
}

/// The commented examples at the end of the default policy must stay valid:
/// strip the `//   ` prefix from the example lines and check the result.
#[test]
fn default_policy_examples_are_valid() {
    let examples: String = DEFAULT_POLICY
        .lines()
        .skip_while(|l| !l.contains("Examples to adapt"))
        .filter_map(|l| l.strip_prefix("//   "))
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(check(&examples), Ok(4), "{examples}");
    let combined = format!("{DEFAULT_POLICY}\n{examples}");
    assert_eq!(check(&combined), Ok(10));
}
