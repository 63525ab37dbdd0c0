//! `brevet policy check FILE`: validates a Cedar policy file locally, with the same engine and
//! schema the server loads it with. No server is contacted.

use std::path::Path;

use brevet_proto::api::PolicyCheckResult;

use super::Ctx;
use crate::cli::PolicyCommand;
use crate::error::Error;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: PolicyCommand) -> Result<(), Error> {
    let PolicyCommand::Check { file } = command;
    let policies = check(&file)?;
    let result = PolicyCheckResult { ok: true, policies };
    ctx.show(&result, |out, r| {
        writeln!(out, "ok: {} policies", r.policies)?;
        Ok(())
    })
}

/// The number of policies in `path`, or why the file is rejected.
pub(crate) fn check(path: &Path) -> Result<usize, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    brevet_policy::check(&text).map_err(|source| Error::Policy {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_checks_and_garbage_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good.cedar");
        std::fs::write(&good, brevet_policy::DEFAULT_POLICY).unwrap();
        assert!(check(&good).unwrap() > 0);

        let bad = tmp.path().join("bad.cedar");
        std::fs::write(&bad, "permit(principal, action, resource").unwrap();
        let err = check(&bad).unwrap_err().to_string();
        assert!(err.starts_with("policy file `"), "{err}");
        assert!(err.contains("bad.cedar"), "{err}");

        let err = check(&tmp.path().join("missing.cedar"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read `"), "{err}");
    }
}
