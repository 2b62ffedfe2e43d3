//! One `nats-server` process: started from a generated config in its own temporary directory,
//! ready once `/healthz` answers 200, killed when dropped.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::accounts::Credentials;
use crate::binary::nats_server_binary;
use crate::config::{ClusterLink, Layout, ServerOptions, TlsOptions, render};
use crate::health::{START_TIMEOUT, poll_until};
use crate::http::{monitor_json, try_http_get};
use crate::ports::free_ports;
use crate::raw::RawConnection;
use crate::tls::TlsFiles;

/// How often a start is retried with new ports when another process took one of them.
pub(crate) const START_ATTEMPTS: usize = 5;

/// How long [`NatsServer::stop`] waits for a graceful exit before killing the process.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of each log file quoted in a failure message.
const LOG_TAIL_LINES: usize = 80;

/// A running (or stopped) `nats-server` on 127.0.0.1.
///
/// Presets: [`single`](Self::single), [`jetstream`](Self::jetstream), [`tls`](Self::tls),
/// [`mtls`](Self::mtls), [`accounts`](Self::accounts), [`with_auth`](Self::with_auth); anything
/// else through [`start`](Self::start) with [`ServerOptions`]. The process is killed and its
/// directory (config, log, pid file, JetStream store, certificates) deleted on drop.
///
/// ```no_run
/// let server = nats_tests::NatsServer::jetstream();
/// let varz = server.monitor_json("/varz");
/// assert_eq!(varz["port"], server.port());
/// ```
#[derive(Debug)]
pub struct NatsServer {
    // Declared first so the process is handled in Drop before the directory goes away.
    child: Option<Child>,
    options: ServerOptions,
    name: String,
    binary: PathBuf,
    port: u16,
    monitor_port: u16,
    cluster: Option<ClusterLink>,
    config_path: PathBuf,
    log_path: PathBuf,
    out_path: PathBuf,
    pid_path: PathBuf,
    store_dir: Option<PathBuf>,
    tls: Option<TlsFiles>,
    dir: TempDir,
}

/// Why a server did not become ready; `address_in_use` means "retry with other ports".
#[derive(Debug)]
pub(crate) struct StartFailure {
    pub(crate) message: String,
    pub(crate) address_in_use: bool,
}

impl NatsServer {
    /// A plain server: no JetStream, no auth, no TLS.
    #[track_caller]
    pub fn single() -> NatsServer {
        NatsServer::start(ServerOptions::default())
    }

    /// A server with JetStream (file store in a temporary directory, see
    /// [`store_dir`](Self::store_dir)).
    #[track_caller]
    pub fn jetstream() -> NatsServer {
        NatsServer::start(ServerOptions {
            jetstream: true,
            ..ServerOptions::default()
        })
    }

    /// A server that requires TLS; clients verify it with [`TlsFiles::ca`] (see
    /// [`tls_files`](Self::tls_files)). The `INFO` line is still sent in plaintext first.
    #[track_caller]
    pub fn tls() -> NatsServer {
        NatsServer::start(ServerOptions {
            tls: Some(TlsOptions::default()),
            ..ServerOptions::default()
        })
    }

    /// A server that requires TLS and a client certificate signed by the test CA
    /// ([`TlsFiles::client_cert`] / [`TlsFiles::client_key`]).
    #[track_caller]
    pub fn mtls() -> NatsServer {
        NatsServer::start(ServerOptions {
            tls: Some(TlsOptions {
                verify: true,
                ..TlsOptions::default()
            }),
            ..ServerOptions::default()
        })
    }

    /// A JetStream server with the accounts preset: [`APP_USER`](crate::APP_USER) in account
    /// `APP` (JetStream enabled) and [`SYS_USER`](crate::SYS_USER) in the system account `SYS`.
    /// Clients must authenticate; see [`url_as`](Self::url_as).
    #[track_caller]
    pub fn accounts() -> NatsServer {
        NatsServer::start(ServerOptions {
            jetstream: true,
            accounts: true,
            ..ServerOptions::default()
        })
    }

    /// A plain server with `config` appended to its configuration: meant for auth blocks
    /// (`authorization { user: a, password: b }`, `authorization { token: t }`,
    /// `authorization { users: [ { nkey: U... } ] }`), but any config text works.
    #[track_caller]
    pub fn with_auth(config: &str) -> NatsServer {
        NatsServer::start(ServerOptions {
            extra_config: config.to_string(),
            ..ServerOptions::default()
        })
    }

    /// Starts a server as `options` describe and waits until `/healthz` answers 200.
    ///
    /// # Panics
    /// When `nats-server` is not installed (the message names `bash scripts/setup`), or the
    /// server exits or stays unhealthy for 20 s (the message quotes its logs).
    #[track_caller]
    pub fn start(options: ServerOptions) -> NatsServer {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let ports = free_ports(2);
            let mut server = NatsServer::prepare(options.clone(), ports[0], ports[1], None);
            server.spawn();
            match server.wait_ready(START_TIMEOUT) {
                Ok(()) => return server,
                Err(failure) if failure.address_in_use => failures.push(failure.message),
                Err(failure) => panic!("{}", failure.message),
            }
        }
        panic!(
            "nats-server could not start after {START_ATTEMPTS} attempts with different ports:\n{}",
            failures.join("\n")
        )
    }

    /// Writes the config (and certificates) for a server into a new temporary directory
    /// without starting it.
    pub(crate) fn prepare(
        options: ServerOptions,
        port: u16,
        monitor_port: u16,
        cluster: Option<ClusterLink>,
    ) -> NatsServer {
        let binary = nats_server_binary();
        let name = options.name.clone().unwrap_or_else(|| "nats".to_string());
        let dir = tempfile::Builder::new()
            .prefix(&format!("nats-tests-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let tls = options
            .tls
            .map(|_| TlsFiles::generate(&dir.path().join("certs")));
        let store_dir = options.jetstream.then(|| dir.path().join("js"));
        let mut server = NatsServer {
            child: None,
            config_path: dir.path().join(format!("{name}.conf")),
            log_path: dir.path().join(format!("{name}.log")),
            out_path: dir.path().join(format!("{name}.out")),
            pid_path: dir.path().join(format!("{name}.pid")),
            options,
            name,
            binary,
            port,
            monitor_port,
            cluster,
            store_dir,
            tls,
            dir,
        };
        server.write_config();
        server
    }

    fn write_config(&mut self) {
        let text = render(
            &self.options,
            &Layout {
                name: &self.name,
                port: self.port,
                monitor_port: self.monitor_port,
                pid_file: &self.pid_path,
                log_file: &self.log_path,
                store_dir: self.store_dir.as_deref(),
                tls: self.tls.as_ref(),
                cluster: self.cluster.as_ref(),
            },
        );
        std::fs::write(&self.config_path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.config_path.display()));
    }

    /// Starts the process without waiting for it to be ready.
    pub(crate) fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "server {} is already running",
            self.name
        );
        // stdout/stderr catch what happens before the log file is open (config errors).
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.out_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.out_path.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate a file handle: {e}"));
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Waits until `/healthz` answers 200, the process exits, or `timeout` passes.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<(), StartFailure> {
        let mut exited = None;
        let monitor_port = self.monitor_port;
        let child = &mut self.child;
        let ready = poll_until(timeout, || {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            matches!(try_http_get(monitor_port, "/healthz"), Ok((200, _)))
        });
        let problem = match (ready, exited) {
            (true, None) => return Ok(()),
            (_, Some(status)) => {
                self.child = None;
                format!("exited ({status}) before it was ready")
            }
            (false, None) => format!("was not healthy (GET /healthz != 200) after {timeout:?}"),
        };
        let logs = self.logs();
        Err(StartFailure {
            address_in_use: logs.contains("address already in use"),
            message: format!(
                "nats-server {} ({}, config {}) {problem}\n{}",
                self.name,
                self.url(),
                self.config_path.display(),
                self.log_tail(LOG_TAIL_LINES)
            ),
        })
    }

    /// Stops the server gracefully (SIGTERM), killing it if it has not exited after 10 s.
    /// A no-op when it is not running. The ports, directory and store are kept for
    /// [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if !self.is_running() {
            self.child = None;
            return;
        }
        self.signal("term");
        if !self.wait_for_exit(STOP_TIMEOUT) {
            self.kill();
        }
    }

    /// Kills the server with SIGKILL (a crash, for chaos tests). A no-op when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it already exited; either way it is reaped below.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then starts it again with the same ports, config and store,
    /// and waits until it is healthy.
    ///
    /// # Panics
    /// When it does not become healthy (for example because another process took its port).
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        if let Err(failure) = self.wait_ready(START_TIMEOUT) {
            panic!("restart failed: {}", failure.message);
        }
    }

    /// Puts the server into lame-duck mode (`nats-server --signal ldm=<pid>`): it stops
    /// accepting clients, sends connected clients an `INFO` with `"ldm":true`, and after the
    /// grace period ([`LAME_DUCK_GRACE_PERIOD`](crate::config::LAME_DUCK_GRACE_PERIOD)) closes
    /// them and exits.
    #[track_caller]
    pub fn lame_duck(&self) {
        self.signal("ldm");
    }

    /// Makes the server re-read its config file (`--signal reload`); see
    /// [`set_extra_config`](Self::set_extra_config).
    #[track_caller]
    pub fn reload(&self) {
        self.signal("reload");
    }

    /// Sends a signal with `nats-server --signal <signal>=<pid>`: one of `ldm`, `stop`, `quit`,
    /// `term`, `reopen`, `reload`.
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be delivered.
    #[track_caller]
    pub fn signal(&self, signal: &str) {
        let pid = self.pid();
        let output = Command::new(&self.binary)
            .arg("--signal")
            .arg(format!("{signal}={pid}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        assert!(
            output.status.success(),
            "nats-server --signal {signal}={pid} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }

    /// Replaces the [`ServerOptions::extra_config`] text and rewrites the config file; takes
    /// effect on [`reload`](Self::reload) (for reloadable settings) or [`restart`](Self::restart).
    pub fn set_extra_config(&mut self, config: &str) {
        self.options.extra_config = config.to_string();
        self.write_config();
    }

    /// Whether the process is still alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Waits up to `timeout` for the process to exit (e.g. after lame-duck mode); returns
    /// whether it did.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        poll_until(timeout, || !self.is_running())
    }

    /// The client URL: `nats://127.0.0.1:<port>`, or `tls://127.0.0.1:<port>` for TLS servers.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The client URL with credentials: `nats://user:password@127.0.0.1:<port>`.
    pub fn url_as(&self, credentials: &Credentials) -> String {
        let url = self.url();
        let (scheme, rest) = url.split_once("://").unwrap_or(("nats", &url));
        format!(
            "{scheme}://{}:{}@{rest}",
            credentials.user, credentials.password
        )
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The monitoring HTTP port (`/varz`, `/connz`, `/routez`, `/jsz`, `/healthz`, ...).
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// The route port, for cluster nodes.
    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster.as_ref().map(|c| c.port)
    }

    /// The process id.
    ///
    /// # Panics
    /// When the server is not running.
    #[track_caller]
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(child) => child.id(),
            None => panic!("nats-server {} is not running", self.name),
        }
    }

    /// The `server_name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options the server was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The JetStream `store_dir` (the server keeps its data in a `jetstream/` directory under
    /// it), or `None` without JetStream.
    pub fn store_dir(&self) -> Option<&Path> {
        self.store_dir.as_deref()
    }

    /// The server's temporary directory (config, logs, pid file, store, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's `log_file`.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The `pid_file` the server writes.
    pub fn pid_path(&self) -> &Path {
        &self.pid_path
    }

    /// The certificates of a TLS server.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Everything the server wrote so far: its stdout/stderr, then its log file.
    pub fn logs(&self) -> String {
        format!(
            "{}{}",
            read_or_empty(&self.out_path),
            read_or_empty(&self.log_path)
        )
    }

    fn log_tail(&self, lines: usize) -> String {
        let tail = |path: &Path| {
            let text = read_or_empty(path);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- {} (stdout/stderr) ---\n{}\n--- {} (last {lines} lines) ---\n{}",
            self.out_path.display(),
            tail(&self.out_path),
            self.log_path.display(),
            tail(&self.log_path)
        )
    }

    /// `GET path` on the monitoring port, parsed as JSON (e.g. `"/varz"`, `"/jsz?streams=1"`).
    ///
    /// # Panics
    /// When the request fails or does not return 200 with JSON.
    #[track_caller]
    pub fn monitor_json(&self, path: &str) -> Value {
        monitor_json(self.monitor_port, path)
    }

    /// Whether `GET /healthz` answers 200 right now.
    pub fn is_healthy(&self) -> bool {
        matches!(try_http_get(self.monitor_port, "/healthz"), Ok((200, _)))
    }

    /// A raw protocol connection to the client port that has read the server's `INFO` line
    /// (plaintext: for TLS servers only the `INFO` can be read this way).
    #[track_caller]
    pub fn raw_connection(&self) -> RawConnection {
        RawConnection::connect(self.port)
    }
}

fn read_or_empty(path: &Path) -> String {
    File::open(path)
        .and_then(|mut f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })
        .unwrap_or_default()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
