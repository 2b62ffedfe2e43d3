//! Authentication against a real server, each method with its failure: user/password (options
//! and URL), token, NKey, JWT + `.creds` file (operator mode with JWTs signed here), and the
//! auth callback. Secrets never show in `Debug` output or error messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use nats_client::{Auth, AuthCallback, Client, ConnectError, ConnectOptions};
use nats_tests::NatsServer;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

/// The connection is accepted and carries traffic.
async fn round_trip(client: &Client) {
    let mut sub = client.subscribe("auth.check").await.unwrap();
    client.flush().await.unwrap();
    client.publish("auth.check", "hi").await.unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message within 5 s")
        .expect("subscription open");
    assert_eq!(&msg.payload[..], b"hi");
}

#[track_caller]
fn assert_authorization_violation(result: Result<Client, ConnectError>, secrets: &[&str]) {
    let err = result.expect_err("the server must refuse these credentials");
    assert!(
        matches!(err, ConnectError::AuthorizationViolation(_)),
        "{err:?}"
    );
    assert_no_secret(&format!("{err} / {err:?}"), secrets);
}

#[track_caller]
fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked in {text}");
    }
}

fn host_port(server: &NatsServer) -> String {
    format!("127.0.0.1:{}", server.port())
}

// ---- user / password -------------------------------------------------------------------

#[tokio::test]
async fn user_and_password_from_options() {
    let server = NatsServer::with_auth("authorization { user: alice, password: s3cr3t-pw }");
    let client = ConnectOptions::new()
        .user_and_password("alice", "s3cr3t-pw")
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;

    let wrong = ConnectOptions::new().user_and_password("alice", "wr0ng-pw");
    assert_no_secret(&format!("{wrong:?}"), &["wr0ng-pw"]);
    assert_authorization_violation(wrong.connect(&server.url()).await, &["wr0ng-pw"]);
    assert_authorization_violation(nats_client::connect(&server.url()).await, &[]);
}

#[tokio::test]
async fn user_and_password_from_the_url() {
    let server = NatsServer::with_auth("authorization { user: alice, password: s3cr3t-pw }");
    let url = format!("nats://alice:s3cr3t-pw@{}", host_port(&server));
    let client = nats_client::connect(&url).await.unwrap();
    round_trip(&client).await;
    assert_no_secret(&format!("{client:?}"), &["s3cr3t-pw"]);
    assert_no_secret(&format!("{:?}", client.servers()), &["s3cr3t-pw"]);

    let url = format!("nats://alice:wr0ng-pw@{}", host_port(&server));
    assert_authorization_violation(nats_client::connect(&url).await, &["wr0ng-pw"]);
}

#[tokio::test]
async fn percent_encoded_url_credentials_are_decoded() {
    let server = NatsServer::with_auth("authorization { user: \"a@b\", password: \"p:w/x\" }");
    let url = format!("nats://a%40b:p%3Aw%2Fx@{}", host_port(&server));
    let client = nats_client::connect(&url).await.unwrap();
    round_trip(&client).await;
}

// ---- token -----------------------------------------------------------------------------

#[tokio::test]
async fn token_from_options_and_url() {
    let server = NatsServer::with_auth("authorization { token: t0ken-value }");
    let client = ConnectOptions::new()
        .token("t0ken-value")
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;

    // nats://<token>@host: the server reads a lone user part as the token.
    let url = format!("nats://t0ken-value@{}", host_port(&server));
    let client = nats_client::connect(&url).await.unwrap();
    round_trip(&client).await;

    let wrong = ConnectOptions::new().token("bad-t0ken");
    assert_no_secret(&format!("{wrong:?}"), &["bad-t0ken"]);
    assert_authorization_violation(wrong.connect(&server.url()).await, &["bad-t0ken"]);
    let url = format!("nats://bad-t0ken@{}", host_port(&server));
    assert_authorization_violation(nats_client::connect(&url).await, &["bad-t0ken"]);
}

// ---- NKey ------------------------------------------------------------------------------

#[tokio::test]
async fn nkey_signs_the_nonce() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::with_auth(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        user.public_key()
    ));
    assert!(
        server.raw_connection().info()["nonce"].is_string(),
        "an nkey server sends a nonce"
    );
    let seed = user.seed().unwrap();
    let options = ConnectOptions::new().nkey(seed.clone());
    assert_no_secret(&format!("{options:?}"), &[&seed]);
    let client = options.connect(&server.url()).await.unwrap();
    round_trip(&client).await;

    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    assert_authorization_violation(
        ConnectOptions::new()
            .nkey(stranger.clone())
            .connect(&server.url())
            .await,
        &[&stranger],
    );
}

#[tokio::test]
async fn invalid_nkey_seed_is_a_credentials_error() {
    let server = NatsServer::single();
    let err = ConnectOptions::new()
        .nkey("SUNOTAVALIDSEED")
        .connect(&server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Credentials(_)), "{err:?}");
    assert_no_secret(&format!("{err} / {err:?}"), &["SUNOTAVALIDSEED"]);
}

// ---- JWT + .creds (operator mode) ------------------------------------------------------

/// Encodes and signs a NATS JWT (`ed25519-nkey`): header.claims.signature, base64url.
fn sign_jwt(signer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "jti": format!("TEST{}{}", iat, SEQ.fetch_add(1, Ordering::Relaxed)),
        "iat": iat,
        "iss": signer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let sig = signer.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An operator-mode server (memory resolver preloaded with one account) and a way to issue
/// users of that account.
struct Operator {
    server: NatsServer,
    account: nkeys::KeyPair,
}

impl Operator {
    fn start() -> Operator {
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        let system = nkeys::KeyPair::new_account();
        let operator_jwt = sign_jwt(
            &operator,
            &operator.public_key(),
            "test-operator",
            json!({
                "type": "operator",
                "version": 2,
                "system_account": system.public_key(),
            }),
        );
        // Limits absent from a JWT decode as 0 (= nothing allowed): say "unlimited".
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1,
            "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
        });
        let account_jwt = |key: &nkeys::KeyPair, name: &str| {
            sign_jwt(
                &operator,
                &key.public_key(),
                name,
                json!({ "type": "account", "version": 2, "limits": unlimited }),
            )
        };
        let server = NatsServer::with_auth(&format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
            operator_jwt,
            system.public_key(),
            account.public_key(),
            account_jwt(&account, "APP"),
            system.public_key(),
            account_jwt(&system, "SYS"),
        ));
        Operator { server, account }
    }

    /// A user JWT signed by `issuer` (the account, or anyone else for negative tests).
    fn user_jwt(&self, user: &nkeys::KeyPair, issuer: &nkeys::KeyPair) -> String {
        sign_jwt(
            issuer,
            &user.public_key(),
            "test-user",
            json!({
                "type": "user", "version": 2,
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            }),
        )
    }
}

fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[tokio::test]
async fn jwt_from_a_creds_file() {
    let op = Operator::start();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("user.creds");
    std::fs::write(&creds, creds_text(&op.user_jwt(&user, &op.account), &seed)).unwrap();

    let options = ConnectOptions::new().credentials_file(&creds);
    assert_no_secret(&format!("{options:?}"), &[&seed]);
    let client = options.connect(&op.server.url()).await.unwrap();
    round_trip(&client).await;

    // The JWT and seed given directly work the same way.
    let client = ConnectOptions::new()
        .jwt(op.user_jwt(&user, &op.account), seed.clone())
        .connect(&op.server.url())
        .await
        .unwrap();
    round_trip(&client).await;
}

#[tokio::test]
async fn jwt_failures() {
    let op = Operator::start();
    let dir = tempfile::tempdir().unwrap();

    // A JWT issued by an account the server does not know.
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let rogue = nkeys::KeyPair::new_account();
    let creds = dir.path().join("rogue.creds");
    std::fs::write(&creds, creds_text(&op.user_jwt(&user, &rogue), &seed)).unwrap();
    assert_authorization_violation(
        ConnectOptions::new()
            .credentials_file(&creds)
            .connect(&op.server.url())
            .await,
        &[&seed],
    );

    // A valid JWT but the nonce signed with another user's seed.
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let creds = dir.path().join("stolen.creds");
    std::fs::write(&creds, creds_text(&op.user_jwt(&user, &op.account), &other)).unwrap();
    assert_authorization_violation(
        ConnectOptions::new()
            .credentials_file(&creds)
            .connect(&op.server.url())
            .await,
        &[&other],
    );

    // No credentials at all.
    assert_authorization_violation(nats_client::connect(&op.server.url()).await, &[]);

    // A creds file that cannot be read, or holds no JWT: a credentials error, not a panic.
    let err = ConnectOptions::new()
        .credentials_file(dir.path().join("missing.creds"))
        .connect(&op.server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Credentials(_)), "{err:?}");
    let garbage = dir.path().join("garbage.creds");
    std::fs::write(&garbage, "not a creds file").unwrap();
    let err = ConnectOptions::new()
        .credentials_file(&garbage)
        .connect(&op.server.url())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Credentials(_)), "{err:?}");
}

// ---- auth callback ---------------------------------------------------------------------

fn user_pass_callback(user: &'static str, pass: &'static str) -> AuthCallback {
    Arc::new(move |_nonce| {
        Box::pin(async move {
            Ok(Auth {
                user: Some(user.into()),
                pass: Some(pass.into()),
                ..Default::default()
            })
        })
    })
}

#[tokio::test]
async fn auth_callback_user_and_password() {
    let server = NatsServer::with_auth("authorization { user: alice, password: s3cr3t-pw }");
    let client = ConnectOptions::new()
        .auth_callback(user_pass_callback("alice", "s3cr3t-pw"))
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;

    let options = ConnectOptions::new().auth_callback(user_pass_callback("alice", "wr0ng-pw"));
    assert_no_secret(&format!("{options:?}"), &["wr0ng-pw"]);
    assert_authorization_violation(options.connect(&server.url()).await, &["wr0ng-pw"]);
}

#[tokio::test]
async fn auth_callback_signs_the_servers_nonce() {
    let user = Arc::new(nkeys::KeyPair::new_user());
    let server = NatsServer::with_auth(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        user.public_key()
    ));
    let calls = Arc::new(AtomicUsize::new(0));
    let callback: AuthCallback = {
        let (user, calls) = (user.clone(), calls.clone());
        Arc::new(move |nonce: Vec<u8>| {
            let (user, calls) = (user.clone(), calls.clone());
            Box::pin(async move {
                calls.fetch_add(1, Ordering::Relaxed);
                if nonce.is_empty() {
                    return Err("the server sent no nonce".to_string());
                }
                Ok(Auth {
                    nkey: Some(user.public_key()),
                    signature: Some(user.sign(&nonce).map_err(|e| e.to_string())?),
                    ..Default::default()
                })
            })
        })
    };
    let client = ConnectOptions::new()
        .auth_callback(callback)
        .connect(&server.url())
        .await
        .unwrap();
    round_trip(&client).await;
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // Signing with another key is refused.
    let stranger = Arc::new(nkeys::KeyPair::new_user());
    let public = user.public_key();
    let forged: AuthCallback = Arc::new(move |nonce: Vec<u8>| {
        let (stranger, public) = (stranger.clone(), public.clone());
        Box::pin(async move {
            Ok(Auth {
                nkey: Some(public),
                signature: Some(stranger.sign(&nonce).unwrap()),
                ..Default::default()
            })
        })
    });
    assert_authorization_violation(
        ConnectOptions::new()
            .auth_callback(forged)
            .connect(&server.url())
            .await,
        &[],
    );
}

#[tokio::test]
async fn auth_callback_error_is_a_credentials_error() {
    let server = NatsServer::with_auth("authorization { token: t0ken-value }");
    let failing: AuthCallback =
        Arc::new(|_nonce| Box::pin(async { Err("vault unreachable".to_string()) }));
    let err = ConnectOptions::new()
        .auth_callback(failing)
        .connect(&server.url())
        .await
        .unwrap_err();
    match err {
        ConnectError::Credentials(text) => assert!(text.contains("vault unreachable"), "{text}"),
        other => panic!("expected ConnectError::Credentials, got {other:?}"),
    }
}

// ---- secrets in Debug ------------------------------------------------------------------

#[test]
fn debug_output_never_shows_secrets() {
    let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.c2VjcmV0LWNsYWltcw.c2ln";
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    for options in [
        ConnectOptions::new().user_and_password("alice", "pw-hunter2"),
        ConnectOptions::new().token("tok-hunter2"),
        ConnectOptions::new().nkey(seed.clone()),
        ConnectOptions::new().jwt(jwt, seed.clone()),
    ] {
        let text = format!("{options:?} {options:#?}");
        assert_no_secret(&text, &["pw-hunter2", "tok-hunter2", &seed, jwt]);
    }
    let auth = Auth {
        user: Some("alice".into()),
        pass: Some("pw-hunter2".into()),
        token: Some("tok-hunter2".into()),
        jwt: Some(jwt.into()),
        ..Default::default()
    };
    assert_no_secret(&format!("{auth:?}"), &["pw-hunter2", "tok-hunter2", jwt]);
    let addr = nats_client::ServerAddr::parse("nats://alice:pw-hunter2@127.0.0.1:1").unwrap();
    assert_no_secret(&format!("{addr:?} {addr}"), &["pw-hunter2"]);
    let err = nats_client::ServerAddr::parse("nats://alice:pw-hunter2@bad host:1").unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"), &["pw-hunter2"]);
}

#[tokio::test]
async fn connection_errors_never_show_url_passwords() {
    // Nothing listens on this port: the I/O error names the server, not the password.
    let port = nats_tests::free_port();
    let err = nats_client::connect(&format!("nats://alice:pw-hunter2@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Io { .. }), "{err:?}");
    assert_no_secret(&format!("{err} {err:?}"), &["pw-hunter2"]);
}
