//! From flags, environment and context file to a `SysClient`.

use std::path::{Path, PathBuf};

use admin::{AdminError, SysClient, Timing};
use nats_client::{Client, ConnectError, ConnectOptions};
use serde::Deserialize;

use crate::args::ConnArgs;

/// The server when nothing names one.
const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// A context file: what the `nats` CLI stores per context (the fields used here).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Context {
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    creds: Option<PathBuf>,
    nkey: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
}

/// Connects and checks that the user is in the system account.
pub async fn connect(args: &ConnArgs) -> Result<SysClient, String> {
    let client = client(args).await?;
    let timing = Timing {
        quiet: args.quiet,
        deadline: args.timeout,
    };
    SysClient::with_timing(client, timing)
        .await
        .map_err(|e| admin_error(&e))
}

/// Connects as whoever the options say (the queue commands' user of the services' account).
pub async fn client(args: &ConnArgs) -> Result<Client, String> {
    let ctx = match &args.context {
        Some(path) => read_context(path)?,
        None => Context::default(),
    };
    let url = args
        .url
        .clone()
        .or(ctx.url)
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let mut options = ConnectOptions::new()
        .name("nats-admin")
        .connection_timeout(args.timeout)
        .request_timeout(args.timeout)
        .max_reconnects(Some(0));
    if let Some(user) = args.user.clone().or(ctx.user) {
        let password = args.password.clone().or(ctx.password).unwrap_or_default();
        options = options.user_and_password(user, password);
    }
    if let Some(creds) = args.creds.clone().or(ctx.creds) {
        options = options.credentials_file(creds);
    }
    if let Some(nkey) = args.nkey.clone().or(ctx.nkey) {
        let seed = std::fs::read_to_string(&nkey)
            .map_err(|e| format!("cannot read the NKey seed file {}: {e}", nkey.display()))?;
        options = options.nkey(seed.trim().to_string());
    }
    if let Some(ca) = args.tls_ca.clone().or(ctx.ca) {
        options = options.add_root_certificates(ca).require_tls(true);
    }
    match (
        args.tls_cert.clone().or(ctx.cert),
        args.tls_key.clone().or(ctx.key),
    ) {
        (Some(cert), Some(key)) => options = options.add_client_certificate(cert, key),
        (None, None) => {}
        _ => return Err("--tlscert and --tlskey go together".to_string()),
    }
    if args.tls_first {
        options = options.tls_first();
    }
    options
        .connect(url.as_str())
        .await
        .map_err(|e| connect_error(&url, &e))
}

/// A context is a file path, or the name of one the `nats` CLI saved
/// (`$XDG_CONFIG_HOME/nats/context/<name>.json`, by default under `~/.config`).
fn context_path(context: &Path) -> PathBuf {
    if context.exists() || context.components().count() > 1 {
        return context.to_path_buf();
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    match config {
        Some(dir) => dir
            .join("nats")
            .join("context")
            .join(format!("{}.json", context.display())),
        None => context.to_path_buf(),
    }
}

fn read_context(context: &Path) -> Result<Context, String> {
    let path = &context_path(context);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the context file {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the context file {} is not valid: {e}", path.display()))
}

/// One line saying which of the three usual failures it is.
pub fn connect_error(url: &str, e: &ConnectError) -> String {
    let url = redact(url);
    match e {
        ConnectError::AuthorizationViolation(_) => format!(
            "the server at {url} refused the credentials (authorization violation): \
             check the user, password, creds or nkey"
        ),
        ConnectError::Credentials(m) => format!("cannot use the credentials: {m}"),
        ConnectError::Io { .. }
        | ConnectError::TimedOut { .. }
        | ConnectError::ClosedDuringHandshake { .. }
        | ConnectError::NoServers => format!("cannot reach the server at {url}: {e}"),
        ConnectError::InvalidUrl { .. } => e.to_string(),
        other => format!("cannot connect to {url}: {other}"),
    }
}

/// An admin error as one line.
pub fn admin_error(e: &AdminError) -> String {
    match e {
        AdminError::Connect(c) => connect_error("the server", c),
        other => other.to_string(),
    }
}

/// The URL without a password in it.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}{}", &u[..scheme + 3], &u[at + 1..])
            }
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact("nats://sys:secret@127.0.0.1:4222,nats://127.0.0.1:4223"),
            "nats://127.0.0.1:4222,nats://127.0.0.1:4223"
        );
    }
}
