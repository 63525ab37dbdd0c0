use super::*;
use crate::chain::{Head, seal};
use crate::event::leaf_hash;
use proptest::prelude::*;
use serde_json::json;

const AT: &str = "2026-11-28T10:00:00Z";

fn sealed(actor: &str, data: serde_json::Value) -> Sealed {
    seal(&Head::GENESIS, "grant.used", actor, "g-1", data, AT)
        .unwrap()
        .0
}

fn line(s: &Sealed) -> Vec<u8> {
    let mut out = Vec::new();
    write_export_line(s, &mut out).unwrap();
    out
}

fn leaf(h: &Hashed) -> Hash {
    h.leaf_for_tests().unwrap()
}

#[test]
fn a_written_line_takes_the_fast_path_and_hashes_as_the_event() {
    // Keys deliberately out of order: the line holds them sorted.
    let data = json!({"z": 1, "cmd": "/usr/bin/id -u", "a": [true, null, -7, {"y": "é\"\n\u{1}"}]});
    let s = sealed("device:web-01", data);
    let text = line(&s);
    assert!(text.ends_with(b"}\n"));
    let shown = std::str::from_utf8(&text).unwrap();
    assert!(
        shown.contains(r#""data":{"a":[true,null,-7,{"y":"é\"\n\u0001"}],"cmd":"#),
        "{shown}"
    );
    let fast = fast(text.trim_ascii_end()).expect("the recogniser takes what the writer writes");
    assert_eq!(leaf(&fast), leaf_hash(&s.event).unwrap());
    assert_eq!(fast.record_for_tests(), Recorded::of(&s));
    // The line is ordinary JSON that reads back as the same record.
    let back: Sealed = serde_json::from_slice(&text).unwrap();
    assert_eq!(back, s);
}

#[test]
fn other_layouts_and_forms_take_the_slow_path_with_the_same_verdict() {
    let s = sealed(
        "device:web-01",
        json!({"n": 1.5, "big": u64::MAX, "esc": "a\u{7f}/"}),
    );
    let text = line(&s);
    assert!(
        fast(text.trim_ascii_end()).is_none(),
        "a fraction is left to serde"
    );
    let h = Hashed::from_export_line(&text).unwrap();
    assert_eq!(leaf(&h), leaf_hash(&s.event).unwrap());
    let pretty = serde_json::to_string_pretty(&s).unwrap();
    let h = Hashed::from_export_line(pretty.as_bytes()).unwrap();
    assert_eq!(leaf(&h), leaf_hash(&s.event).unwrap());
    let escaped_actor = sealed("dev\"ice", json!({}));
    let text = line(&escaped_actor);
    assert!(fast(text.trim_ascii_end()).is_none());
    assert_eq!(
        leaf(&Hashed::from_export_line(&text).unwrap()),
        leaf_hash(&escaped_actor.event).unwrap()
    );
}

#[test]
fn lines_that_are_not_events_are_refused() {
    let s = sealed("a", json!({"k": 1}));
    let good = String::from_utf8(line(&s)).unwrap();
    let extra_field = good.replacen("{\"seq\"", "{\"note\":\"x\",\"seq\"", 1);
    let duplicate = good.replacen("{\"seq\":1", "{\"seq\":1,\"seq\":1", 1);
    for bad in ["", "not json", "{}", "[1]", &extra_field, &duplicate] {
        assert!(Hashed::from_export_line(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn edits_change_the_leaf_or_the_record() {
    let s = sealed("a", json!({"cmd": "/usr/bin/id"}));
    let good = String::from_utf8(line(&s)).unwrap();
    let want = leaf_hash(&s.event).unwrap();
    let edited = good.replace("/usr/bin/id", "/bin/sh");
    assert_ne!(
        leaf(&Hashed::from_export_line(edited.as_bytes()).unwrap()),
        want
    );
    let upper = good.replace(&s.leaf_hash, &s.leaf_hash.to_uppercase());
    let h = Hashed::from_export_line(upper.as_bytes()).unwrap();
    assert_eq!(
        h.record_for_tests().leaf,
        None,
        "upper-case hex matches nothing"
    );
}

/// A JSON object key: plain, or with characters that need escapes.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{0,6}", "\\PC{0,4}", "[\"\\\\\u{0}-\u{1f}]{1,3}"]
}

fn data() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::collection::btree_map(key(), crate::event::tests::value(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(m, nested)| {
            let v = serde_json::Value::Object(m.into_iter().collect());
            if nested { json!([v, {"k": "v"}]) } else { v }
        })
}

/// Data the recogniser takes as it is: integers, strings (escapes included), nesting.
fn plain_data() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z/ .-]{0,12}|\\PC{0,6}|[\"\\\\\u{0}-\u{1f}\u{7f}]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}|[A-Z0-9 !#$%&à-ÿ]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn plain_data_takes_the_fast_path() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..200 {
        let data = plain_data().new_tree(&mut runner).unwrap().current();
        let s = sealed("device:web-01", json!({ "d": data }));
        let text = line(&s);
        let h = fast(text.trim_ascii_end())
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&text)));
        assert_eq!(leaf(&h), leaf_hash(&s.event).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the event, the line verifies: the fast path (when it applies) and the slow path
    /// give the event's own leaf hash.
    #[test]
    fn written_lines_hash_as_their_events(actor in "\\PC{0,8}|[a-z:-]{1,12}", data in data()) {
        let s = sealed(&actor, data);
        let text = line(&s);
        let want = leaf_hash(&s.event).unwrap();
        if let Some(h) = fast(text.trim_ascii_end()) {
            prop_assert_eq!(leaf(&h), want);
        }
        prop_assert_eq!(leaf(&slow(text.trim_ascii_end()).unwrap()), want);
    }

    /// Any byte edit of a line: whenever the recogniser still accepts it, serde reads it as
    /// the same record with the same leaf hash. The fast path never decides differently.
    #[test]
    fn the_fast_path_agrees_with_serde_on_any_edit(
        data in prop_oneof![plain_data(), data()],
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b','), Just(b'}'), Just(b'0'), Just(b'a'), any::<u8>()],
        op in 0..3u8,
    ) {
        let s = sealed("device:web-01", data);
        let mut text = line(&s);
        text.pop();
        let i = at.index(text.len());
        match op {
            0 => text[i] = byte,
            1 => text.insert(i, byte),
            _ => { text.remove(i); }
        }
        if let Some(h) = fast(&text) {
            let by_serde = slow(&text);
            prop_assert!(by_serde.is_ok(), "serde refused a line the recogniser took: {:?}", String::from_utf8_lossy(&text));
            let by_serde = by_serde.unwrap();
            prop_assert_eq!(leaf(&h), leaf(&by_serde));
            prop_assert_eq!(h.record_for_tests(), by_serde.record_for_tests());
        }
    }
}

#[test]
fn hex_is_strict_lower_case() {
    let h = crate::hash::sha256(&[b"x"]);
    let text = crate::hash::to_hex(&h);
    assert_eq!(lower_hex(text.as_bytes()), Some(h));
    assert_eq!(lower_hex(text.to_uppercase().as_bytes()), None);
    assert_eq!(lower_hex(&text.as_bytes()[..62]), None);
    for bad in [b'g', b'"', b' ', 0xff, b'/', b':', b'`'] {
        let mut t = text.clone().into_bytes();
        t[17] = bad;
        assert_eq!(lower_hex(&t), None, "{bad}");
    }
}

/// Found by a long run of the edit property: deleting a key's letter left `""` after `" àà"`,
/// which a comparison that included the quotes took for sorted.
#[test]
fn keys_are_compared_without_their_quotes() {
    let data = json!({" àà": 1, "A": "x"});
    let s = sealed("device:web-01", data);
    let text = String::from_utf8(line(&s)).unwrap();
    let edited = text.replacen("\"A\":", "\"\":", 1);
    let edited = edited.trim_end().as_bytes();
    assert!(fast(edited).is_none(), "unsorted keys go to serde");
    let by_serde = slow(edited).unwrap();
    assert_ne!(leaf(&by_serde), leaf_hash(&s.event).unwrap());
}
