//! Proves the test ground: every topology starts on loopback and behaves as advertised.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use nats_tests::raw::parse_info_line;
use nats_tests::{
    Cluster, INSTALL_COMMAND, NatsServer, RawConnection, SYS_USER, ServerOptions, TlsOptions,
    wait_until,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};

fn assert_loopback_info(info: &Value, server: &NatsServer) {
    assert!(
        info["server_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{info}"
    );
    assert_eq!(info["host"], "127.0.0.1", "{info}");
    assert_eq!(info["port"], server.port(), "{info}");
}

#[test]
fn single_server_sends_info_and_answers_ping() {
    let server = NatsServer::single();
    assert!(server.url().starts_with("nats://127.0.0.1:"));
    let mut conn = server.raw_connection();
    assert_loopback_info(conn.info(), &server);
    assert_eq!(conn.info()["server_name"], "nats");
    conn.handshake(json!({}));
    conn.send("SUB harness.demo 1\r\nPUB harness.demo reply.to 5\r\nhello\r\n");
    let msg = conn.read_msg();
    assert_eq!(msg.subject, "harness.demo");
    assert_eq!(msg.sid, "1");
    assert_eq!(msg.reply.as_deref(), Some("reply.to"));
    assert_eq!(msg.payload, b"hello");
    assert_eq!(server.monitor_json("/varz")["port"], server.port());
    assert!(server.pid() > 0);
    assert!(server.config_path().exists());
    assert!(server.store_dir().is_none());
}

#[test]
fn jetstream_server_has_a_store() {
    let server = NatsServer::jetstream();
    let conn = server.raw_connection();
    assert_loopback_info(conn.info(), &server);
    assert_eq!(conn.info()["jetstream"], true, "{}", conn.info());
    let store = server.store_dir().expect("store dir");
    assert!(store.starts_with(server.dir()));
    let jsz = server.monitor_json("/jsz");
    assert!(
        jsz["config"]["store_dir"]
            .as_str()
            .is_some_and(|d| Path::new(d).starts_with(store)),
        "{jsz}"
    );
}

#[test]
fn stop_and_restart_keep_ports_and_store() {
    let mut server = NatsServer::jetstream();
    let (port, monitor_port) = (server.port(), server.monitor_port());
    server.stop();
    assert!(!server.is_running());
    assert!(!server.is_healthy());
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    server.restart();
    assert!(server.is_running());
    assert_eq!((server.port(), server.monitor_port()), (port, monitor_port));
    assert_loopback_info(server.raw_connection().info(), &server);
    // A crash (SIGKILL) and a restart also come back.
    server.kill();
    assert!(!server.is_running());
    server.restart();
    assert!(server.is_healthy());
}

#[test]
fn lame_duck_announces_ldm_then_exits() {
    let mut server = NatsServer::single();
    let mut conn = server.raw_connection();
    // Protocol 1 makes the server send INFO updates, lame duck among them.
    conn.handshake(json!({}));
    server.lame_duck();
    let mut info = conn.read_info();
    while info["ldm"] != true {
        info = conn.read_info();
    }
    assert!(
        server.wait_for_exit(Duration::from_secs(15)),
        "server did not exit after lame duck:\n{}",
        server.logs()
    );
    assert!(server.logs().contains("lame duck"), "{}", server.logs());
}

#[test]
fn tls_server_announces_tls_required() {
    let server = NatsServer::tls();
    assert!(server.url().starts_with("tls://127.0.0.1:"));
    let conn = server.raw_connection();
    assert_loopback_info(conn.info(), &server);
    assert_eq!(conn.info()["tls_required"], true, "{}", conn.info());
    assert_ne!(conn.info()["tls_verify"], true, "{}", conn.info());
    // Monitoring stays plain HTTP.
    assert!(server.is_healthy());
}

#[test]
fn mtls_server_announces_tls_verify() {
    let server = NatsServer::mtls();
    let conn = server.raw_connection();
    assert_eq!(conn.info()["tls_required"], true, "{}", conn.info());
    assert_eq!(conn.info()["tls_verify"], true, "{}", conn.info());
}

fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA cert")).expect("add CA");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read client cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert");
            let key = PrivateKeyDer::from_pem_file(key).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err("connection closed".to_string()),
        Ok(_) => Ok(line.trim_end().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Connects over TLS (after the plaintext INFO, or TLS first), sends CONNECT + PING and waits
/// for PONG; returns the INFO read over TLS for TLS-first servers.
fn tls_ping(
    server: &NatsServer,
    config: Arc<ClientConfig>,
    server_name: &str,
    tls_first: bool,
) -> Result<Option<Value>, String> {
    let tcp = if tls_first {
        TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).expect("connect")
    } else {
        let conn = RawConnection::connect(server.port());
        assert_eq!(conn.info()["tls_required"], true);
        conn.into_stream()
    };
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let tls = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(StreamOwned::new(tls, tcp));
    let info = if tls_first {
        Some(parse_info_line(&read_line(&mut stream)?))
    } else {
        None
    };
    let writer = stream.get_mut();
    writer
        .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .and_then(|()| writer.flush())
        .map_err(|e| e.to_string())?;
    loop {
        let line = read_line(&mut stream)?;
        if line == "PONG" {
            return Ok(info);
        }
        if line.starts_with("-ERR") {
            return Err(line);
        }
    }
}

#[test]
fn tls_certificates_verify_for_localhost_and_ip() {
    let server = NatsServer::tls();
    let files = server.tls_files().expect("tls files");
    let config = client_config(&files.ca, None);
    tls_ping(&server, config.clone(), "localhost", false).expect("TLS to localhost");
    tls_ping(&server, config, "127.0.0.1", false).expect("TLS to 127.0.0.1");
    let untrusted = client_config(&files.untrusted_ca, None);
    let err = tls_ping(&server, untrusted, "localhost", false).expect_err("untrusted CA");
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn mtls_accepts_only_client_certificates_from_the_ca() {
    let server = NatsServer::mtls();
    let files = server.tls_files().expect("tls files");
    let good = client_config(&files.ca, Some((&files.client_cert, &files.client_key)));
    tls_ping(&server, good, "localhost", false).expect("mTLS with the client cert");
    let none = client_config(&files.ca, None);
    tls_ping(&server, none, "localhost", false).expect_err("no client cert");
    let foreign = client_config(
        &files.ca,
        Some((&files.untrusted_client_cert, &files.untrusted_client_key)),
    );
    tls_ping(&server, foreign, "localhost", false).expect_err("untrusted client cert");
}

#[test]
fn tls_first_server_sends_info_only_after_the_handshake() {
    let server = NatsServer::start(ServerOptions {
        tls: Some(TlsOptions {
            handshake_first: true,
            ..TlsOptions::default()
        }),
        ..ServerOptions::default()
    });
    let mut plain = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let silent = match std::io::Read::read(&mut plain, &mut buf) {
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(n) => n == 0,
    };
    assert!(silent, "a TLS-first server must not send INFO in plaintext");
    let files = server.tls_files().expect("tls files");
    let info = tls_ping(&server, client_config(&files.ca, None), "localhost", true)
        .expect("TLS first")
        .expect("INFO over TLS");
    assert_eq!(info["tls_required"], true, "{info}");
}

#[test]
fn accounts_server_answers_sys_requests() {
    let server = NatsServer::accounts();
    assert_eq!(
        server.url_as(&SYS_USER),
        format!("nats://sys:sys-secret@127.0.0.1:{}", server.port())
    );
    let mut conn = server.raw_connection();
    assert_eq!(conn.info()["auth_required"], true, "{}", conn.info());
    conn.handshake(json!({"user": SYS_USER.user, "pass": SYS_USER.password}));
    conn.send("SUB _INBOX.x 1\r\nPUB $SYS.REQ.SERVER.PING.VARZ _INBOX.x 0\r\n\r\n");
    let msg = conn.read_msg();
    assert_eq!(msg.subject, "_INBOX.x");
    let reply: Value = serde_json::from_slice(&msg.payload).expect("JSON reply");
    assert_eq!(reply["server"]["name"], "nats", "{reply}");
    assert_eq!(reply["data"]["port"], server.port(), "{reply}");

    let mut bad = server.raw_connection();
    bad.send("CONNECT {\"verbose\":false,\"user\":\"sys\",\"pass\":\"wrong\"}\r\nPING\r\n");
    let line = bad.read_line();
    assert!(line.contains("Authorization Violation"), "{line}");
}

#[test]
fn custom_auth_config_is_applied() {
    let server = NatsServer::with_auth("authorization { token: s3cr3t }");
    let mut conn = server.raw_connection();
    assert_eq!(conn.info()["auth_required"], true, "{}", conn.info());
    conn.handshake(json!({"auth_token": "s3cr3t"}));
    let mut bad = server.raw_connection();
    bad.send("CONNECT {\"verbose\":false,\"auth_token\":\"nope\"}\r\nPING\r\n");
    assert!(bad.read_line().contains("Authorization Violation"));
}

fn route_peers(server: &NatsServer) -> HashSet<String> {
    let routez = server.monitor_json("/routez");
    routez["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["remote_name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn cluster_has_routes_and_a_meta_leader() {
    let mut cluster = Cluster::start(3);
    assert_eq!(cluster.urls().len(), 3);
    for i in 0..3 {
        let node = cluster.node(i);
        let expected: HashSet<String> = ["n1", "n2", "n3"]
            .into_iter()
            .filter(|n| *n != node.name())
            .map(str::to_string)
            .collect();
        assert_eq!(route_peers(node), expected, "routes of {}", node.name());
        let routez = node.monitor_json("/routez");
        assert!(
            routez["num_routes"].as_u64().is_some_and(|n| n >= 2),
            "{routez}"
        );
        let jsz = node.monitor_json("/jsz");
        assert!(
            jsz["meta_cluster"]["leader"]
                .as_str()
                .is_some_and(|l| !l.is_empty()),
            "{jsz}"
        );
        assert_eq!(jsz["meta_cluster"]["cluster_size"], 3, "{jsz}");
        assert_loopback_info(node.raw_connection().info(), node);
    }
    let leader = cluster.meta_leader().expect("meta leader");
    assert!(["n1", "n2", "n3"].contains(&leader.as_str()), "{leader}");

    // Without credentials a client lands in APP; the system user reaches $SYS.
    let mut conn = cluster.node(0).raw_connection();
    conn.handshake(json!({}));
    let mut sys = cluster.node(1).raw_connection();
    sys.handshake(json!({"user": SYS_USER.user, "pass": SYS_USER.password}));
    sys.send("SUB _INBOX.y 1\r\nPUB $SYS.REQ.SERVER.PING.ROUTEZ _INBOX.y 0\r\n\r\n");
    let reply: Value = serde_json::from_slice(&sys.read_msg().payload).expect("JSON");
    assert!(reply["data"]["num_routes"].as_u64().is_some(), "{reply}");
}

#[test]
fn cluster_node_stop_restart_and_crash() {
    let mut cluster = Cluster::start(3);
    let port = cluster.node(1).port();

    cluster.stop_node(1);
    wait_until(Duration::from_secs(10), "routes to n2 to go away", || {
        route_peers(cluster.node(0)) == HashSet::from(["n3".to_string()])
    });
    cluster.wait_formed();
    cluster.restart_node(1);
    assert_eq!(cluster.node(1).port(), port);
    assert_eq!(route_peers(cluster.node(1)).len(), 2);

    cluster.kill_node(2);
    cluster.wait_formed();
    cluster.restart_node(2);
    assert_eq!(route_peers(cluster.node(2)).len(), 2);
    assert!(cluster.meta_leader().is_some());
}

#[test]
fn missing_binary_fails_with_the_install_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env("NATS_SERVER", "/nonexistent/nats-server")
        .output()
        .expect("run demo");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(INSTALL_COMMAND), "{stderr}");
}

#[test]
fn demo_prints_the_server_info() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("INFO {"), "{stdout}");
    assert!(stdout.contains("\"server_id\""), "{stdout}");
}
