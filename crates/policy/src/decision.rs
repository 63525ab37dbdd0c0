//! The answer to a query, and its one-line explanation.

/// The outcome of [`Engine::decide`](crate::Engine::decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the policies that determined the decision: the permits that
    /// matched when allowed, the forbids that matched when denied (empty when
    /// denied only because nothing permits). Sorted.
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (Cedar skips them), or why the query
    /// could not be evaluated at all. Never makes a denial into an allow.
    pub errors: Vec<String>,
}

impl Decision {
    /// A denial because the query could not be evaluated.
    pub(crate) fn failed(error: String) -> Decision {
        Decision {
            allowed: false,
            policies: Vec::new(),
            errors: vec![error],
        }
    }

    /// One line for a person: `allowed by policy `a``, `denied by policy `b``,
    /// `denied: no policy permits this`, plus any evaluation errors.
    pub fn explain(&self) -> String {
        let verdict = if self.allowed { "allowed" } else { "denied" };
        let mut out = match self.policies.as_slice() {
            [] if self.allowed => "allowed".to_string(),
            [] => "denied: no policy permits this".to_string(),
            [one] => format!("{verdict} by policy `{one}`"),
            many => {
                let names: Vec<String> = many.iter().map(|p| format!("`{p}`")).collect();
                format!("{verdict} by policies {}", names.join(", "))
            }
        };
        if !self.errors.is_empty() {
            out.push_str(&format!(" (errors: {})", self.errors.join("; ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_cases() {
        let d = |allowed, policies: &[&str], errors: &[&str]| Decision {
            allowed,
            policies: policies.iter().map(|s| s.to_string()).collect(),
            errors: errors.iter().map(|s| s.to_string()).collect(),
        };
        let cases = [
            (d(false, &[], &[]), "denied: no policy permits this"),
            (d(false, &["f"], &[]), "denied by policy `f`"),
            (d(false, &["f", "g"], &[]), "denied by policies `f`, `g`"),
            (d(true, &["p"], &[]), "allowed by policy `p`"),
            (
                d(false, &[], &["boom"]),
                "denied: no policy permits this (errors: boom)",
            ),
        ];
        for (decision, want) in cases {
            assert_eq!(decision.explain(), want);
        }
    }
}
