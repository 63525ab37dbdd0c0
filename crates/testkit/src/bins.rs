//! Locating binaries that the workspace builds (`brevetd`, `brevet`, …) from inside a test.
//!
//! Cargo runs test executables from `target/<profile>/deps/`, and a workspace build puts binaries
//! one level up, in `target/<profile>/`. `cargo test -p X` builds only X's binaries, so a test that
//! needs another crate's binary relies on an earlier `cargo build --workspace`.

use std::path::{Path, PathBuf};

/// Returns the path of the workspace binary `name` in `target/<profile>/`, found from the running
/// test executable.
///
/// # Panics
///
/// When the binary has not been built, with a message saying to run `cargo build --workspace`
/// (adding `--release` when the tests run in release mode), or when the test executable's own
/// path cannot be read.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    let dir = profile_dir(&exe).unwrap_or_else(|| {
        panic!(
            "cannot find the target directory from the test executable `{}`",
            exe.display()
        )
    });
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!(
            "workspace binary `{name}` not found at `{}`: run `cargo build --workspace` first \
             (with `--release` for release-mode tests)",
            path.display()
        );
    }
    path
}

/// `target/<profile>/` for an executable in `target/<profile>/deps/` (tests) or directly in
/// `target/<profile>/` (binaries, examples' parent).
fn profile_dir(exe: &Path) -> Option<PathBuf> {
    let parent = exe.parent()?;
    if parent
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        return parent.parent().map(Path::to_path_buf);
    }
    Some(parent.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_from_deps_and_from_profile() {
        let cases = [
            ("/w/target/debug/deps/brevet_x-0123abcd", "/w/target/debug"),
            ("/w/target/release/deps/t-1", "/w/target/release"),
            ("/w/target/debug/examples/ex", "/w/target/debug"),
            ("/w/target/debug/brevetd", "/w/target/debug"),
        ];
        for (exe, want) in cases {
            assert_eq!(
                profile_dir(Path::new(exe)),
                Some(PathBuf::from(want)),
                "{exe}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "run `cargo build --workspace` first")]
    fn missing_binary_says_how_to_build_it() {
        workspace_bin("no-such-brevet-binary");
    }
}
