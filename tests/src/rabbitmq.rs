//! A throwaway RabbitMQ broker on 127.0.0.1, for the AMQP conformance suite: the same scenario
//! runs through lapin against it and through amqp-compat, and the observations are compared.
//!
//! Debian's `rabbitmq-server` (3.10; `bash scripts/setup --rabbitmq` installs it) is started with
//! its own temporary directories, node name, AMQP port and distribution port, every listener on
//! loopback and no plugins; [`RabbitMq::start`] waits until the broker says it started, and drop
//! stops it. A missing `rabbitmq-server` fails the test with the install command, never skips.
//!
//! Notes from `../shared/tools/rabbitmqd.sh`: the Debian wrapper drops to user `rabbitmq`, so
//! the directory must be owned by it when running as root; the mnesia and log directories must
//! exist. Erlang's port mapper (epmd) is shared by all nodes of the machine and bound to
//! 127.0.0.1; it outlives the broker, as it does for every Erlang node.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::health::poll_until;
use crate::ports::free_ports;

/// The command that installs `rabbitmq-server` for the conformance suite.
pub const RABBITMQ_INSTALL_COMMAND: &str = "bash scripts/setup --rabbitmq";

/// How long the broker may take to start (about 7 s on an idle 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a graceful stop may take before the broker is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running RabbitMQ broker; stopped on drop.
#[derive(Debug)]
pub struct RabbitMq {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    node: String,
}

/// `rabbitmq-server`: `$RABBITMQ_SERVER`, else on `PATH` or in `/usr/sbin`.
///
/// # Panics
/// When it is not installed; the message names [`RABBITMQ_INSTALL_COMMAND`].
pub fn rabbitmq_server_binary() -> PathBuf {
    resolve_rabbitmq_server(
        std::env::var_os("RABBITMQ_SERVER"),
        std::env::var_os("PATH"),
    )
    .unwrap_or_else(|message| panic!("{message}"))
}

/// The search order applied to the given environment (pure, for tests). An explicit
/// `$RABBITMQ_SERVER` that is not a file is an error rather than a reason to look elsewhere.
pub fn resolve_rabbitmq_server(
    env_override: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    let missing = |what: String| {
        format!(
            "{what}; the AMQP conformance tests need rabbitmq-server: run \
             `{RABBITMQ_INSTALL_COMMAND}` from the workspace root (as root: it uses apt-get)"
        )
    };
    if let Some(p) = env_override.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return match p.is_file() {
            true => Ok(p),
            false => Err(missing(format!(
                "RABBITMQ_SERVER={} is not a file",
                p.display()
            ))),
        };
    }
    std::env::split_paths(&path_var.unwrap_or_default())
        .chain([
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/usr/lib/rabbitmq/bin"),
        ])
        .map(|d| d.join("rabbitmq-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| missing("rabbitmq-server is not installed".into()))
}

impl RabbitMq {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// When `rabbitmq-server` is missing or does not start (the message quotes its output).
    #[track_caller]
    pub fn start() -> RabbitMq {
        let binary = rabbitmq_server_binary();
        let dir = tempfile::Builder::new()
            .prefix("nats-tests-rabbitmq-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let ports = free_ports(2);
        let (port, dist_port) = (ports[0], ports[1]);
        let node = format!("rmq{port}@localhost");
        let d = dir.path();
        for sub in ["mnesia", "log"] {
            fs::create_dir_all(d.join(sub)).unwrap_or_else(|e| panic!("cannot create {sub}: {e}"));
        }
        write(
            &d.join("rabbitmq.conf"),
            &format!("listeners.tcp.1 = 127.0.0.1:{port}\n"),
        );
        write(&d.join("plugins"), "[].\n");
        if running_as_root() {
            // The Debian wrapper drops to user `rabbitmq`, which must own the directory.
            let status = Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq"])
                .arg(d)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "cannot chown {} to rabbitmq",
                d.display()
            );
        }
        let out = fs::File::create(d.join("out.log"))
            .unwrap_or_else(|e| panic!("cannot create out.log: {e}"));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone out.log: {e}"));
        let child = Command::new(&binary)
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", d.join("ff"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("plugins"))
            .env("HOME", d)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so stopping it reaches the whole tree.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let mut broker = RabbitMq {
            child: Some(child),
            dir,
            port,
            node,
        };
        let started = poll_until(START_TIMEOUT, || {
            let log = broker.output();
            log.contains("Starting broker... completed")
                || log.contains("Kernel pid terminated")
                || broker.exited()
        });
        let log = broker.output();
        if !started || !log.contains("Starting broker... completed") {
            panic!(
                "rabbitmq-server did not start within {START_TIMEOUT:?} ({}):\n{}",
                broker.node,
                tail(&log, 40)
            );
        }
        broker
    }

    /// The AMQP URL (`amqp://guest:guest@127.0.0.1:<port>/%2f`).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the broker printed so far.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    fn broker_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.path().join("pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Stops the broker (TERM, then KILL after 20 s) and reaps its wrapper process.
    pub fn stop(&mut self) {
        let pid = self.broker_pid();
        let group = self.child.as_ref().map(Child::id);
        if let Some(pid) = pid {
            signal("TERM", &pid.to_string());
        }
        if let Some(g) = group {
            signal("TERM", &format!("-{g}"));
        }
        let gone = poll_until(STOP_TIMEOUT, || pid.is_none_or(|p| !alive(p)));
        if !gone && let Some(pid) = pid {
            signal("KILL", &pid.to_string());
        }
        if let Some(g) = group {
            signal("KILL", &format!("-{g}"));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write(path: &Path, text: &str) {
    fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn signal(sig: &str, target: &str) {
    // Errors mean the process is already gone.
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_broker_names_the_install_command() {
        let err = resolve_rabbitmq_server(Some("/nonexistent/rabbitmq-server".into()), None)
            .expect_err("not a file");
        assert!(err.contains(RABBITMQ_INSTALL_COMMAND), "{err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let fake = dir.path().join("rabbitmq-server");
        fs::write(&fake, "").expect("write");
        assert_eq!(
            resolve_rabbitmq_server(Some(fake.clone().into()), None),
            Ok(fake.clone())
        );
        // PATH is searched before the Debian locations.
        assert_eq!(
            resolve_rabbitmq_server(None, Some(dir.path().into())),
            Ok(fake)
        );
    }
}
