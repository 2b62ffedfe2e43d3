//! Establishing one connection: TCP, optional TLS (before or after INFO), INFO, CONNECT with
//! credentials, and a PING/PONG round trip that proves the server accepted us.

use std::sync::Arc;

use bytes::BytesMut;
use nats_proto::{ConnectInfo, Encoder, Parser, ServerInfo, ServerOp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info_span};

use crate::addr::ServerAddr;
use crate::auth::fill_connect;
use crate::error::ConnectError;
use crate::options::ConnectOptions;
use crate::server_error::ServerError;
use crate::session::inbound_limits;
use crate::tls;
use crate::transport::Transport;

/// A connection that finished its handshake.
pub(crate) struct Established {
    pub transport: Transport,
    pub info: ServerInfo,
    /// Bytes read past the handshake (the server may send more right after PONG).
    pub read_buf: BytesMut,
    pub parser: Parser,
    pub addr: ServerAddr,
}

/// Connects to `addr` within the configured timeout.
pub(crate) async fn establish(
    addr: &ServerAddr,
    opts: &ConnectOptions,
    tls_config: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Established, ConnectError> {
    let span = info_span!("nats.connect", server = %addr);
    tokio::time::timeout(opts.connection_timeout, handshake(addr, opts, tls_config))
        .instrument(span)
        .await
        .map_err(|_| ConnectError::TimedOut {
            server: addr.to_string(),
            timeout: opts.connection_timeout,
        })?
}

fn wants_tls(addr: &ServerAddr, opts: &ConnectOptions) -> bool {
    addr.tls || opts.tls.required
}

async fn handshake(
    addr: &ServerAddr,
    opts: &ConnectOptions,
    tls_config: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Established, ConnectError> {
    let server = addr.to_string();
    #[cfg(test)]
    if let Some(net) = &opts.memory {
        let mut t = Transport::Memory(net.connect(addr).ok_or_else(|| {
            ConnectError::io(&server, &std::io::ErrorKind::ConnectionRefused.into())
        })?);
        let mut parser = Parser::new();
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let info = read_info(&mut t, &mut parser, &mut buf, &server).await?;
        parser.set_limits(inbound_limits(&info));
        return introduce(addr, opts, t, info, parser, buf).await;
    }
    let tcp = TcpStream::connect(addr.socket_addr())
        .await
        .map_err(|e| ConnectError::io(&server, &e))?;
    tcp.set_nodelay(true)
        .map_err(|e| ConnectError::io(&server, &e))?;
    let tls_config = || {
        tls_config
            .cloned()
            .ok_or_else(|| ConnectError::TlsMismatch {
                server: server.clone(),
                message: "TLS is needed but no TLS configuration could be built".into(),
            })
    };
    let mut parser = Parser::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let (transport, info) = if opts.tls.first {
        let tls = tls::upgrade(tcp, tls_config()?, &addr.host, &server).await?;
        let mut t = Transport::Tls(Box::new(tls));
        let info = read_info(&mut t, &mut parser, &mut buf, &server).await?;
        parser.set_limits(inbound_limits(&info));
        (t, info)
    } else {
        let mut t = Transport::Tcp(tcp);
        let info = read_info(&mut t, &mut parser, &mut buf, &server).await?;
        parser.set_limits(inbound_limits(&info));
        let want = wants_tls(addr, opts);
        if want && !info.tls_required && !info.tls_available {
            return Err(ConnectError::TlsMismatch {
                server,
                message: "TLS is required by the client but the server does not offer it".into(),
            });
        }
        if want || info.tls_required {
            let Transport::Tcp(tcp) = t else {
                match unreachable_transport()? {}
            };
            let tls = tls::upgrade(tcp, tls_config()?, &addr.host, &server).await?;
            t = Transport::Tls(Box::new(tls));
        }
        (t, info)
    };
    introduce(addr, opts, transport, info, parser, buf).await
}

/// CONNECT with credentials and a PING, then reads up to the PONG that proves we are in.
async fn introduce(
    addr: &ServerAddr,
    opts: &ConnectOptions,
    mut transport: Transport,
    mut info: ServerInfo,
    mut parser: Parser,
    mut buf: BytesMut,
) -> Result<Established, ConnectError> {
    let server = addr.to_string();
    let mut connect = ConnectInfo {
        verbose: false,
        pedantic: false,
        tls_required: matches!(transport, Transport::Tls(_)),
        name: opts.name.clone(),
        lang: "rust".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: 1,
        echo: opts.echo,
        no_responders: true,
        headers: true,
        ..ConnectInfo::default()
    };
    fill_connect(
        &mut connect,
        &opts.credentials,
        opts.auth_callback.as_ref(),
        addr,
        info.nonce.as_deref(),
    )
    .await?;
    let encoder = Encoder::for_server(&info);
    let mut out = BytesMut::new();
    encoder.connect(&mut out, &connect);
    encoder.ping(&mut out);
    transport
        .write_all(&out)
        .await
        .map_err(|e| transport_error(&server, &e))?;
    transport
        .flush()
        .await
        .map_err(|e| transport_error(&server, &e))?;

    loop {
        match next_op(&mut transport, &mut parser, &mut buf, &server).await? {
            ServerOp::Pong => break,
            ServerOp::Err(text) => return Err(classify_handshake_error(text)),
            ServerOp::Info(new) => {
                parser.set_limits(inbound_limits(&new));
                info = *new;
            }
            ServerOp::Ping => {
                let mut pong = BytesMut::new();
                encoder.pong(&mut pong);
                transport
                    .write_all(&pong)
                    .await
                    .map_err(|e| transport_error(&server, &e))?;
            }
            ServerOp::Ok | ServerOp::Msg(_) | ServerOp::BadMsg(_) => {}
        }
    }
    debug!(server_id = %info.server_id, version = %info.version, "connected");
    Ok(Established {
        transport,
        info,
        read_buf: buf,
        parser,
        addr: addr.clone(),
    })
}

/// A read or write error after TCP connected. A TLS alert (e.g. the server refusing our client
/// certificate, which TLS 1.3 reports only after the client's side of the handshake finished)
/// arrives as an I/O error wrapping a rustls error: report it as the TLS failure it is.
fn transport_error(server: &str, e: &std::io::Error) -> ConnectError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ConnectError::Tls {
            server: server.to_owned(),
            message: tls.to_string(),
        },
        None => ConnectError::io(server, e),
    }
}

fn unreachable_transport() -> Result<std::convert::Infallible, ConnectError> {
    Err(ConnectError::Tls {
        server: String::new(),
        message: "connection already upgraded".into(),
    })
}

/// An `-ERR` during the handshake: one of the auth kinds of [`ServerError`] is an
/// authorization violation, anything else a server error (the text is classified again where
/// it is reported, see `connection::handshake_server_error`).
fn classify_handshake_error(text: String) -> ConnectError {
    if ServerError::parse(&text).is_auth_error() {
        ConnectError::AuthorizationViolation(text)
    } else {
        ConnectError::Server(text)
    }
}

async fn read_info(
    t: &mut Transport,
    parser: &mut Parser,
    buf: &mut BytesMut,
    server: &str,
) -> Result<ServerInfo, ConnectError> {
    match next_op(t, parser, buf, server).await? {
        ServerOp::Info(info) => Ok(*info),
        ServerOp::Err(text) => Err(classify_handshake_error(text)),
        other => Err(ConnectError::Server(format!(
            "expected INFO, got {other:?}"
        ))),
    }
}

async fn next_op(
    t: &mut Transport,
    parser: &mut Parser,
    buf: &mut BytesMut,
    server: &str,
) -> Result<ServerOp, ConnectError> {
    loop {
        if let Some(op) = parser.parse(buf)? {
            return Ok(op);
        }
        let n = t
            .read_buf(buf)
            .await
            .map_err(|e| transport_error(server, &e))?;
        if n == 0 {
            return Err(ConnectError::ClosedDuringHandshake {
                server: server.to_owned(),
            });
        }
    }
}
