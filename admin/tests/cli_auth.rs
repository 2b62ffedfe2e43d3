//! `nats-admin` with the other ways in: mutual TLS from certificate files, and an NKey seed
//! file for a system-account user.

use std::process::Output;

use nats_tests::{NatsServer, SYS_USER, ServerOptions, TlsOptions};

async fn run(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_nats-admin"))
        .env_remove("NATS_URL")
        .env_remove("NATS_USER")
        .env_remove("NATS_PASSWORD")
        .env_remove("NATS_CONTEXT")
        .args(["--timeout", "10s", "--quiet-period", "2s"])
        .args(args)
        .output()
        .await
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_from_certificate_files() {
    let server = NatsServer::start(ServerOptions {
        tls: Some(TlsOptions {
            verify: true,
            ..TlsOptions::default()
        }),
        accounts: true,
        ..ServerOptions::default()
    });
    let files = server.tls_files().expect("TLS files");
    let url = server.url();
    let (ca, cert, key) = (
        files.ca.to_str().unwrap(),
        files.client_cert.to_str().unwrap(),
        files.client_key.to_str().unwrap(),
    );
    let sys = ["--user", SYS_USER.user, "--password", SYS_USER.password];

    let o = run(&[
        &[
            "-s",
            &url,
            "--tlsca",
            ca,
            "--tlscert",
            cert,
            "--tlskey",
            key,
        ][..],
        &sys,
        &["--json", "server", "list"],
    ]
    .concat())
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["servers"].as_array().map(Vec::len), Some(1), "{list}");

    // Without the CA the server's certificate is not trusted: one line, exit 1.
    let o = run(&[
        &["-s", &url, "--tlscert", cert, "--tlskey", key][..],
        &sys,
        &["server", "list"],
    ]
    .concat())
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));

    // A certificate without its key is a usage mistake, said in one line.
    let o = run(&[
        &["-s", &url, "--tlsca", ca, "--tlscert", cert][..],
        &sys,
        &["server", "list"],
    ]
    .concat())
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--tlscert and --tlskey go together"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_nkey_seed_file_for_a_system_user() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let server = NatsServer::start(ServerOptions {
        extra_config: format!(
            "accounts {{\n  SYS: {{ users: [ {{ nkey: {} }} ] }}\n  APP: {{ users: [ {{ user: a, password: b }} ] }}\n}}\nsystem_account: SYS\n",
            user.public_key()
        ),
        ..ServerOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("sys.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).unwrap();

    let o = run(&[
        "-s",
        &server.url(),
        "--nkey",
        seed_file.to_str().unwrap(),
        "--json",
        "server",
        "ping",
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let ping: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ping["servers"].as_array().map(Vec::len), Some(1), "{ping}");

    // Another key is refused by the server: the credentials error, not a hang.
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    std::fs::write(&seed_file, other).unwrap();
    let o = run(&[
        "-s",
        &server.url(),
        "--nkey",
        seed_file.to_str().unwrap(),
        "server",
        "ping",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused the credentials"),
        "{}",
        stderr(&o)
    );
}
