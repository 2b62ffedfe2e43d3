//! Authentication: user/password, token, NKey, JWT (`.creds` files) and a callback.
//!
//! Secrets are kept out of `Debug` output; only their kind is shown.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use nats_proto::ConnectInfo;

use crate::addr::ServerAddr;
use crate::error::ConnectError;

/// Credentials an [`AuthCallback`] returns for one connection attempt.
#[derive(Clone, Default)]
pub struct Auth {
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// Token.
    pub token: Option<String>,
    /// User JWT.
    pub jwt: Option<String>,
    /// Public NKey (with `signature`).
    pub nkey: Option<String>,
    /// Signature of the nonce, raw bytes.
    pub signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user)
            .field("nkey", &self.nkey)
            .finish_non_exhaustive()
    }
}

/// Result future of an [`AuthCallback`].
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Auth, String>> + Send>>;

/// A callback asked for credentials on every connection attempt, given the server's nonce
/// (empty when the server sent none).
pub type AuthCallback = Arc<dyn Fn(Vec<u8>) -> AuthFuture + Send + Sync>;

/// Configured credentials.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    #[default]
    None,
    UserPass {
        user: String,
        pass: String,
    },
    Token(String),
    NKey(String),
    Jwt {
        jwt: String,
        seed: String,
    },
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::UserPass { user, .. } => write!(f, "UserPass({user:?}, <redacted>)"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::NKey(_) => f.write_str("NKey(<redacted>)"),
            Credentials::Jwt { .. } => f.write_str("Jwt(<redacted>)"),
            Credentials::CredsFile(p) => write!(f, "CredsFile({p:?})"),
        }
    }
}

/// Fills the auth fields of a CONNECT for one attempt on `server`.
pub(crate) async fn fill_connect(
    connect: &mut ConnectInfo,
    credentials: &Credentials,
    callback: Option<&AuthCallback>,
    server: &ServerAddr,
    nonce: Option<&str>,
) -> Result<(), ConnectError> {
    let nonce = nonce.unwrap_or_default().as_bytes();
    match credentials {
        Credentials::None => {}
        Credentials::UserPass { user, pass } => {
            connect.user = Some(user.clone());
            connect.pass = Some(pass.clone());
        }
        Credentials::Token(token) => connect.auth_token = Some(token.clone()),
        Credentials::NKey(seed) => {
            let key = key_pair(seed)?;
            connect.nkey = Some(key.public_key());
            connect.sig = Some(sign(&key, nonce)?);
        }
        Credentials::Jwt { jwt, seed } => {
            connect.jwt = Some(jwt.clone());
            connect.sig = Some(sign(&key_pair(seed)?, nonce)?);
        }
        Credentials::CredsFile(path) => {
            let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                ConnectError::Credentials(format!("cannot read {}: {e}", path.display()))
            })?;
            let (jwt, seed) = parse_creds(&text)?;
            connect.jwt = Some(jwt);
            connect.sig = Some(sign(&key_pair(&seed)?, nonce)?);
        }
    }
    // Credentials in the URL are used when nothing else was configured (as nats.go).
    if matches!(credentials, Credentials::None) {
        match (&server.user, &server.pass) {
            (Some(user), Some(pass)) => {
                connect.user = Some(user.clone());
                connect.pass = Some(pass.clone());
            }
            (Some(token), None) => connect.auth_token = Some(token.clone()),
            _ => {}
        }
    }
    if let Some(callback) = callback {
        let auth = callback(nonce.to_vec())
            .await
            .map_err(ConnectError::Credentials)?;
        if auth.user.is_some() {
            connect.user = auth.user;
            connect.pass = auth.pass;
        }
        if auth.token.is_some() {
            connect.auth_token = auth.token;
        }
        if auth.jwt.is_some() {
            connect.jwt = auth.jwt;
        }
        if auth.nkey.is_some() {
            connect.nkey = auth.nkey;
        }
        if let Some(sig) = auth.signature {
            connect.sig = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig));
        }
    }
    Ok(())
}

fn key_pair(seed: &str) -> Result<nkeys::KeyPair, ConnectError> {
    nkeys::KeyPair::from_seed(seed.trim())
        .map_err(|e| ConnectError::Credentials(format!("invalid NKey seed: {e}")))
}

fn sign(key: &nkeys::KeyPair, nonce: &[u8]) -> Result<String, ConnectError> {
    let sig = key
        .sign(nonce)
        .map_err(|e| ConnectError::Credentials(format!("cannot sign the nonce: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig))
}

/// Extracts the user JWT and the NKey seed from the text of a `.creds` file: the first and
/// second blocks framed by `-----BEGIN ...-----` / `------END ...------` lines.
pub(crate) fn parse_creds(text: &str) -> Result<(String, String), ConnectError> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("---") && line.contains("BEGIN") {
            current = Some(String::new());
        } else if line.starts_with("---") && line.contains("END") {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
        } else if let Some(b) = current.as_mut()
            && !line.is_empty()
        {
            b.push_str(line);
        }
    }
    match blocks.as_slice() {
        [jwt, seed, ..] if !jwt.is_empty() && !seed.is_empty() => Ok((jwt.clone(), seed.clone())),
        _ => Err(ConnectError::Credentials(
            "creds file must hold a user JWT block and an NKey seed block".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_file_blocks() {
        let text = "-----BEGIN NATS USER JWT-----\neyJhbGc.abc.def\n------END NATS USER JWT------\n\n\
            ************************* IMPORTANT *************************\n\
            -----BEGIN USER NKEY SEED-----\nSUAMK2FG\n------END USER NKEY SEED------\n";
        let (jwt, seed) = parse_creds(text).unwrap();
        assert_eq!(
            (jwt.as_str(), seed.as_str()),
            ("eyJhbGc.abc.def", "SUAMK2FG")
        );
        assert!(parse_creds("nothing here").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::UserPass {
            user: "u".into(),
            pass: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Token("tok123".into())).contains("tok123"));
    }

    #[tokio::test]
    async fn nkey_signs_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let mut c = ConnectInfo::default();
        let server = ServerAddr::parse("127.0.0.1").unwrap();
        fill_connect(
            &mut c,
            &Credentials::NKey(seed),
            None,
            &server,
            Some("nonce123"),
        )
        .await
        .unwrap();
        assert_eq!(c.nkey.as_deref(), Some(kp.public_key().as_str()));
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c.sig.unwrap())
            .unwrap();
        kp.verify(b"nonce123", &sig).unwrap();
    }
}
