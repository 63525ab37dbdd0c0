//! When grants start and end, computed from the journal alone (never from the server), as pure
//! functions of the journal and a time so the rules are table-tested.
//!
//! A grant is in force on `[not_before, not_after)`: it is removed at `not_after`, not a second
//! before, and put in force at `not_before`. A grant whose removal started but did not finish is
//! due for removal again at once.

use std::collections::BTreeMap;

use crate::journal::Entry;

/// Ids of grants to remove at `now`, with the reason to give: their own pending reason, or
/// `expired`.
pub fn due_removals(active: &BTreeMap<String, Entry>, now: i64) -> Vec<(String, String)> {
    active
        .iter()
        .filter_map(|(id, e)| match &e.removing {
            Some(reason) => Some((id.clone(), reason.clone())),
            None if now >= e.window().1 => Some((id.clone(), "expired".to_owned())),
            None => None,
        })
        .collect()
}

/// Ids of accepted grants whose window has started and that are not in force yet.
pub fn due_activations(active: &BTreeMap<String, Entry>, now: i64) -> Vec<String> {
    active
        .iter()
        .filter(|(_, e)| {
            let (nb, na) = e.window();
            e.applied_at.is_none() && e.removing.is_none() && nb <= now && now < na
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// The next time something is due: a start of a waiting grant or an end of any grant. A
/// pending removal is due at once (`i64::MIN`).
pub fn next_deadline(active: &BTreeMap<String, Entry>) -> Option<i64> {
    active
        .values()
        .map(|e| {
            let (nb, na) = e.window();
            if e.removing.is_some() {
                i64::MIN
            } else if e.applied_at.is_none() {
                nb.min(na)
            } else {
                na
            }
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use brevet_proto::grant::SignedGrant;

    const NB: i64 = 1_795_860_000; // 2026-11-28T10:00:00Z
    const NA: i64 = NB + 1800;

    fn entry(applied: bool, removing: Option<&str>) -> Entry {
        Entry {
            signed: SignedGrant {
                doc: String::new(),
                sig: String::new(),
            },
            doc: crate::sudoers::render_tests_doc(),
            applied_at: applied.then_some(NB),
            drop_in: None,
            groups: vec![],
            removing: removing.map(str::to_owned),
        }
    }

    fn one(e: Entry) -> BTreeMap<String, Entry> {
        BTreeMap::from([("g".to_owned(), e)])
    }

    #[test]
    fn removals() {
        let cases: &[(bool, Option<&str>, i64, Option<&str>)] = &[
            (true, None, NA - 1, None),
            (true, None, NA, Some("expired")),
            (true, None, NA + 3600, Some("expired")),
            (false, None, NA, Some("expired")),
            (true, Some("revoked"), NB, Some("revoked")),
            (false, None, NB - 10, None),
        ];
        for &(applied, removing, now, want) in cases {
            let got = due_removals(&one(entry(applied, removing)), now);
            let want: Vec<(String, String)> = want
                .map(|r| ("g".to_owned(), r.to_owned()))
                .into_iter()
                .collect();
            assert_eq!(
                got, want,
                "applied={applied} removing={removing:?} now={now}"
            );
        }
    }

    #[test]
    fn activations() {
        let cases: &[(bool, Option<&str>, i64, bool)] = &[
            (false, None, NB - 1, false),
            (false, None, NB, true),
            (false, None, NA - 1, true),
            (false, None, NA, false),
            (true, None, NB, false),
            (false, Some("revoked"), NB, false),
        ];
        for &(applied, removing, now, want) in cases {
            let got = !due_activations(&one(entry(applied, removing)), now).is_empty();
            assert_eq!(
                got, want,
                "applied={applied} removing={removing:?} now={now}"
            );
        }
    }

    #[test]
    fn deadlines() {
        assert_eq!(next_deadline(&BTreeMap::new()), None);
        assert_eq!(next_deadline(&one(entry(true, None))), Some(NA));
        assert_eq!(next_deadline(&one(entry(false, None))), Some(NB));
        assert_eq!(
            next_deadline(&one(entry(true, Some("revoked")))),
            Some(i64::MIN)
        );
        let mut later = entry(true, None);
        later.doc.not_after = "2026-11-28T12:00:00Z".into();
        let mut both = one(entry(true, None));
        both.insert("h".into(), later);
        assert_eq!(next_deadline(&both), Some(NA));
    }
}
