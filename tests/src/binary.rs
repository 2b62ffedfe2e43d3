//! Finding the `nats-server` binary: `$NATS_SERVER`, else the one `scripts/setup` installs at
//! `<workspace>/.tools/venv/bin/nats-server`, else `nats-server` on `PATH`.
//!
//! A missing binary is a test failure that prints the install command, never a silent skip: a
//! suite that skips its integration tests looks green while testing nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The command that installs `nats-server` for the harness (run from the workspace root).
pub const INSTALL_COMMAND: &str = "bash scripts/setup";

/// Oldest server the harness supports: 2.10 brought the config keys and monitoring fields the
/// tests rely on (Debian's 2.9 package is too old).
const MIN_VERSION: (u32, u32) = (2, 10);

/// The workspace root: the parent of this crate's directory, fixed at compile time so it is right
/// whichever crate's tests (or the bench binary) use the harness.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The path `scripts/setup` installs `nats-server` to.
pub fn venv_binary(root: &Path) -> PathBuf {
    root.join(".tools")
        .join("venv")
        .join("bin")
        .join("nats-server")
}

/// The `nats-server` binary to run, resolved once per process.
///
/// # Panics
/// When no binary is found or it is older than 2.10; the message names the install command
/// [`INSTALL_COMMAND`].
pub fn nats_server_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BINARY.get_or_init(|| {
        let path = resolve_binary(
            std::env::var_os("NATS_SERVER"),
            &workspace_root(),
            std::env::var_os("PATH"),
        )?;
        check_version(&path)?;
        Ok(path)
    });
    match found {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// Applies the search order to the given environment; pure so it can be tested without touching
/// the process environment.
///
/// An explicit `$NATS_SERVER` that is not an executable file is an error rather than a reason to
/// fall back: whoever set it wants that binary.
pub fn resolve_binary(
    env_override: Option<OsString>,
    root: &Path,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    if let Some(explicit) = env_override.filter(|v| !v.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return if is_executable(&explicit) {
            Ok(explicit)
        } else {
            Err(format!(
                "NATS_SERVER={} is not an executable file; unset it, or install nats-server \
                 with `{INSTALL_COMMAND}` (from the workspace root {})",
                explicit.display(),
                root.display()
            ))
        };
    }
    let venv = venv_binary(root);
    if is_executable(&venv) {
        return Ok(venv);
    }
    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(&path_var) {
            let candidate = dir.join("nats-server");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "nats-server not found (looked at $NATS_SERVER, {}, and PATH). Install it with \
         `{INSTALL_COMMAND}` from the workspace root {} and run the tests again.",
        venv.display(),
        root.display()
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn check_version(path: &Path) -> Result<(), String> {
    let output = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text).ok_or_else(|| {
        format!(
            "{} --version printed {text:?}, not a nats-server version; install one with \
             `{INSTALL_COMMAND}`",
            path.display()
        )
    })?;
    if version < MIN_VERSION {
        return Err(format!(
            "{} is nats-server {}.{}, older than the {}.{} the tests need; install a current \
             one with `{INSTALL_COMMAND}` (or point $NATS_SERVER at one)",
            path.display(),
            version.0,
            version.1,
            MIN_VERSION.0,
            MIN_VERSION.1
        ));
    }
    Ok(())
}

/// `"nats-server: v2.15.1"` -> `(2, 15)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().rsplit(['v', ' ']).next()?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_the_install_command() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err =
            resolve_binary(None, empty.path(), Some(OsString::new())).expect_err("nothing to find");
        assert!(err.contains(INSTALL_COMMAND), "{err}");
    }

    #[test]
    fn explicit_override_that_does_not_exist_is_an_error() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = resolve_binary(
            Some("/nonexistent/nats-server".into()),
            empty.path(),
            std::env::var_os("PATH"),
        )
        .expect_err("bad override");
        assert!(
            err.contains("NATS_SERVER=/nonexistent/nats-server"),
            "{err}"
        );
        assert!(err.contains(INSTALL_COMMAND), "{err}");
    }

    #[test]
    fn venv_binary_wins_over_path() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let bin = venv_binary(root.path());
        std::fs::create_dir_all(bin.parent().expect("parent")).expect("mkdir");
        std::fs::write(&bin, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(resolve_binary(None, root.path(), None), Ok(bin));
    }

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(parse_version("garbage"), None);
    }
}
