//! [`SysClient`]: `$SYS` requests across a cluster, with every server that should have
//! answered and did not named in the result.
//!
//! Which servers should answer is learned, never assumed ([`discover`](SysClient::discover)):
//! first the server this client is connected to says how many servers it knows in the system
//! account, its route peers and the JetStream meta group's size (one request, one answer);
//! then a `STATSZ` ping records each server that answers, the route peers each one names, and
//! the meta group's peers (the meta leader lists every peer, offline ones included). Every
//! request waits for that many replies, and stops early only after a quiet period without
//! replies or at the deadline; whoever is known and stayed silent is in [`Gathered::missing`].
//! A server first seen answering is added to what is known.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use nats_client::{Client, Message};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::gather::gather;
use crate::known::KnownServers;
use crate::models::envelope::decode;
use crate::models::{
    Accountz, ApiErrorBody, Connz, Gatewayz, HealthStatus, JetStreamInfo, Leafz, Routez,
    ServerIdentity, ServerStats, Subsz, Varz,
};
use crate::options::{
    AccountKind, AccountzOptions, ConnzOptions, HealthzOptions, JszOptions, LeafzOptions,
    NoOptions, ServerKind, SubszOptions,
};
use crate::{AdminError, Gathered, ServerFailure, ServerReply};

/// How long a scatter-gather waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Once a reply has arrived, stop after this long without another (when fewer servers
    /// than expected answered). Default 500 ms.
    pub quiet: Duration,
    /// Stop this long after sending, whatever arrived. Default 5 s.
    pub deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            quiet: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
        }
    }
}

/// The user the connection is authenticated as (`$SYS.REQ.USER.INFO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// The user.
    pub user: String,
    /// Its account.
    pub account: String,
}

/// `$SYS` administration over a client connected with system-account credentials.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = nats_client::ConnectOptions::new()
///     .user_and_password("sys", "sys-secret")
///     .connect("nats://127.0.0.1:4222")
///     .await?;
/// let sys = admin::SysClient::new(client).await?; // fails if not in the system account
/// let varz = sys.varz().await?;
/// for reply in &varz.replies {
///     println!("{} {} conns", reply.server.name, reply.data.connections);
/// }
/// println!("not answering: {:?}", varz.missing);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SysClient {
    client: Client,
    timing: Timing,
    known: Mutex<KnownServers>,
}

impl SysClient {
    /// Wraps `client` and discovers the cluster ([`discover`](Self::discover)) with the
    /// default [`Timing`]. Fails with [`AdminError::NotSystemAccount`] when the client's user
    /// is not in the system account.
    pub async fn new(client: Client) -> Result<SysClient, AdminError> {
        SysClient::with_timing(client, Timing::default()).await
    }

    /// [`new`](Self::new) with explicit timing.
    pub async fn with_timing(client: Client, timing: Timing) -> Result<SysClient, AdminError> {
        let sys = SysClient {
            client,
            timing,
            known: Mutex::new(KnownServers::default()),
        };
        match sys.discover().await {
            Ok(_) => Ok(sys),
            // Outside the system account only a few $SYS subjects are imported: STATSZ
            // reaches nobody. USER.INFO is imported everywhere and names the account.
            Err(e @ (AdminError::NoResponders { .. } | AdminError::NoReplies { .. })) => {
                match sys.user_info().await {
                    Ok(info) => Err(AdminError::NotSystemAccount {
                        user: info.user,
                        account: info.account,
                    }),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The timing in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The servers known so far as (name, id); the id is empty for a server only named by
    /// its peers.
    pub fn known_servers(&self) -> Vec<(String, String)> {
        crate::lock(&self.known).list()
    }

    /// Pings `STATSZ` and learns the cluster from the answers: the servers that answered,
    /// the route peers they name, and the JetStream meta group's peers and size. Returns
    /// the statistics, with `missing` naming servers that peers know and that did not answer.
    pub async fn discover(&self) -> Result<Gathered<ServerStats>, AdminError> {
        // The connected server first: its answer says how many replies the ping should wait
        // for, so a healthy cluster answers without waiting out the quiet period.
        let connected = self.client.server_info().server_id.clone();
        if !connected.is_empty() {
            let subject = format!("$SYS.REQ.SERVER.{connected}.STATSZ");
            let reply = self.request_one(&subject, b"{}").await?;
            if let (server, Ok(Some(stats))) =
                decode::<ServerStats>(&subject, true, &reply.payload)?
            {
                crate::lock(&self.known).learn_stats(&server, &stats);
            }
        }
        let gathered: Gathered<ServerStats> =
            self.ping(ServerKind::Statsz, &NoOptions::default()).await?;
        let (missing, unnamed_missing) = {
            let mut known = crate::lock(&self.known);
            for reply in &gathered.replies {
                known.learn_stats(&reply.server, &reply.data);
            }
            known.missing(gathered.answered())
        };
        Ok(Gathered {
            missing,
            unnamed_missing,
            ..gathered
        })
    }

    /// Sends `$SYS.REQ.SERVER.PING.<kind>` with `options` as the body and gathers one answer
    /// per server. `T` is the kind's model (or `serde_json::Value`).
    ///
    /// With a [`ServerFilter`](crate::options::ServerFilter) set in the options only the
    /// matching servers answer: the gather then ends after the quiet period, and `missing`
    /// stays empty (which servers should have matched is the servers' call).
    pub async fn ping<T: DeserializeOwned>(
        &self,
        kind: ServerKind,
        options: &impl Serialize,
    ) -> Result<Gathered<T>, AdminError> {
        let subject = format!("$SYS.REQ.SERVER.PING.{}", kind.as_str());
        let (body, filtered) = to_body_filtered(options)?;
        let expected = if filtered { None } else { self.expected() };
        let messages = gather(
            &self.client,
            &subject,
            &body,
            expected,
            self.timing.quiet,
            self.timing.deadline,
        )
        .await?;
        let gathered = self.collect(&subject, kind == ServerKind::Statsz, messages, !filtered)?;
        if gathered.replies.is_empty() && gathered.failed.is_empty() {
            return Err(AdminError::NoReplies {
                subject,
                waited: self.timing.deadline,
            });
        }
        Ok(gathered)
    }

    /// Sends `$SYS.REQ.ACCOUNT.<account>.<kind>` and gathers the answers of every server
    /// that knows the account. `missing` stays empty here: a server without the account
    /// legitimately stays silent for some kinds.
    pub async fn account_request<T: DeserializeOwned>(
        &self,
        account: &str,
        kind: AccountKind,
        options: &impl Serialize,
    ) -> Result<Gathered<T>, AdminError> {
        check_token(account)?;
        let subject = format!("$SYS.REQ.ACCOUNT.{account}.{}", kind.as_str());
        let body = to_body(options)?;
        let expected = match kind {
            AccountKind::Statz => None,
            _ => self.expected(),
        };
        let messages = gather(
            &self.client,
            &subject,
            &body,
            expected,
            self.timing.quiet,
            self.timing.deadline,
        )
        .await?;
        self.collect(&subject, false, messages, false)
    }

    /// Sends `$SYS.REQ.SERVER.<id>.<kind>` to one server, named by its name or id.
    pub async fn server_request<T: DeserializeOwned>(
        &self,
        server: &str,
        kind: ServerKind,
        options: &impl Serialize,
    ) -> Result<ServerReply<T>, AdminError> {
        let id = self.resolve(server).await?;
        let subject = format!("$SYS.REQ.SERVER.{id}.{}", kind.as_str());
        let reply = self
            .request_one(&subject, &to_body(options)?)
            .await
            .map_err(|e| not_answering(server, e))?;
        let (identity, data) = decode::<T>(&subject, kind == ServerKind::Statsz, &reply.payload)?;
        match data {
            Ok(Some(data)) => Ok(ServerReply {
                server: identity,
                data,
            }),
            Ok(None) => Err(AdminError::Decode {
                subject,
                message: "the answer has no data".into(),
            }),
            Err(e) => Err(server_error(&identity, server, e)),
        }
    }

    /// Disconnects client `cid` on `server` (name or id): `$SYS.REQ.SERVER.<id>.KICK`.
    /// A client with reconnect enabled comes back (to any server).
    pub async fn kick(&self, server: &str, cid: u64) -> Result<(), AdminError> {
        self.client_command(server, "KICK", cid).await
    }

    /// Sends client `cid` on `server` an INFO with `ldm: true`, as if the server were going
    /// into lame-duck mode, so the client moves to another server by itself:
    /// `$SYS.REQ.SERVER.<id>.LDM`.
    pub async fn lame_duck(&self, server: &str, cid: u64) -> Result<(), AdminError> {
        self.client_command(server, "LDM", cid).await
    }

    /// The user and account this connection is authenticated as. Works in any account.
    pub async fn user_info(&self) -> Result<UserInfo, AdminError> {
        user_info(&self.client, self.timing.deadline).await
    }

    /// `VARZ` from every server.
    pub async fn varz(&self) -> Result<Gathered<Varz>, AdminError> {
        self.ping(ServerKind::Varz, &NoOptions::default()).await
    }

    /// `CONNZ` from every server.
    pub async fn connz(&self, options: &ConnzOptions) -> Result<Gathered<Connz>, AdminError> {
        self.ping(ServerKind::Connz, options).await
    }

    /// `ROUTEZ` from every server.
    pub async fn routez(&self) -> Result<Gathered<Routez>, AdminError> {
        self.ping(ServerKind::Routez, &NoOptions::default()).await
    }

    /// `GATEWAYZ` from every server.
    pub async fn gatewayz(&self) -> Result<Gathered<Gatewayz>, AdminError> {
        self.ping(ServerKind::Gatewayz, &NoOptions::default()).await
    }

    /// `LEAFZ` from every server.
    pub async fn leafz(&self, options: &LeafzOptions) -> Result<Gathered<Leafz>, AdminError> {
        self.ping(ServerKind::Leafz, options).await
    }

    /// `SUBSZ` from every server.
    pub async fn subsz(&self, options: &SubszOptions) -> Result<Gathered<Subsz>, AdminError> {
        self.ping(ServerKind::Subsz, options).await
    }

    /// `JSZ` from every server.
    pub async fn jsz(&self, options: &JszOptions) -> Result<Gathered<JetStreamInfo>, AdminError> {
        self.ping(ServerKind::Jsz, options).await
    }

    /// `HEALTHZ` from every server.
    pub async fn healthz(
        &self,
        options: &HealthzOptions,
    ) -> Result<Gathered<HealthStatus>, AdminError> {
        self.ping(ServerKind::Healthz, options).await
    }

    /// `ACCOUNTZ` from every server.
    pub async fn accountz(
        &self,
        options: &AccountzOptions,
    ) -> Result<Gathered<Accountz>, AdminError> {
        self.ping(ServerKind::Accountz, options).await
    }

    /// `STATSZ` from every server (without re-learning the cluster; see
    /// [`discover`](Self::discover)).
    pub async fn statsz(&self) -> Result<Gathered<ServerStats>, AdminError> {
        self.ping(ServerKind::Statsz, &NoOptions::default()).await
    }

    async fn client_command(&self, server: &str, verb: &str, cid: u64) -> Result<(), AdminError> {
        let id = self.resolve(server).await?;
        let subject = format!("$SYS.REQ.SERVER.{id}.{verb}");
        let body = serde_json::json!({ "cid": cid }).to_string();
        let reply = self
            .request_one(&subject, body.as_bytes())
            .await
            .map_err(|e| not_answering(server, e))?;
        let (identity, data) = decode::<serde_json::Value>(&subject, false, &reply.payload)?;
        data.map(|_| ())
            .map_err(|e| server_error(&identity, server, e))
    }

    /// One request, one reply, with the deadline as timeout; 503 is `NoResponders`.
    async fn request_one(&self, subject: &str, body: &[u8]) -> Result<Message, AdminError> {
        let reply = self
            .client
            .request_with(subject, None, body, self.timing.deadline)
            .await
            .map_err(|e| match e {
                nats_client::RequestError::NoResponders { subject } => {
                    AdminError::NoResponders { subject }
                }
                nats_client::RequestError::TimedOut { subject, timeout } => AdminError::NoReplies {
                    subject,
                    waited: timeout,
                },
                other => AdminError::Request(other),
            })?;
        Ok(reply)
    }

    /// A server name or id -> its id, from what is known (discovering again once if needed).
    async fn resolve(&self, server: &str) -> Result<String, AdminError> {
        check_token(server)?;
        for attempt in 0..2 {
            if let Some(id) = crate::lock(&self.known).id_of(server) {
                return Ok(id);
            }
            if attempt == 0 {
                self.discover().await?;
            }
        }
        // Server ids are 56 characters of base32; let one through even if unseen.
        if server.len() == 56 && server.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(server.to_string());
        }
        // Named by its peers, never answered: its id is unknown because it is not there.
        if crate::lock(&self.known).is_named(server) {
            return Err(AdminError::ServerNotAnswering {
                server: server.to_string(),
            });
        }
        let known = self.known_servers();
        Err(AdminError::UnknownServer {
            server: server.to_string(),
            known: known
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// How many replies to wait for.
    fn expected(&self) -> Option<usize> {
        crate::lock(&self.known).expected()
    }

    /// Decodes the replies, learns their servers, and names who is missing.
    fn collect<T: DeserializeOwned>(
        &self,
        subject: &str,
        statsz: bool,
        messages: Vec<Message>,
        report_missing: bool,
    ) -> Result<Gathered<T>, AdminError> {
        let mut replies = Vec::new();
        let mut failed = Vec::new();
        let mut seen = BTreeSet::new();
        for msg in messages {
            let (server, data) = decode::<T>(subject, statsz, &msg.payload)?;
            if !seen.insert(server.id.clone()) {
                continue; // a duplicate (a re-delivered reply); the first one counts
            }
            match data {
                Ok(Some(data)) => replies.push(ServerReply { server, data }),
                Ok(None) => failed.push(ServerFailure {
                    server,
                    error: ApiErrorBody {
                        code: 0,
                        description: "the answer has no data".into(),
                    },
                }),
                Err(error) => failed.push(ServerFailure { server, error }),
            }
        }
        replies.sort_by(|a, b| a.server.name.cmp(&b.server.name));
        failed.sort_by(|a, b| a.server.name.cmp(&b.server.name));
        let gathered = Gathered {
            replies,
            failed,
            missing: Vec::new(),
            unnamed_missing: 0,
        };
        let mut known = crate::lock(&self.known);
        for server in gathered
            .replies
            .iter()
            .map(|r| &r.server)
            .chain(gathered.failed.iter().map(|f| &f.server))
        {
            known.record(server);
        }
        if !report_missing {
            return Ok(gathered);
        }
        let (missing, unnamed_missing) = known.missing(gathered.answered());
        Ok(Gathered {
            missing,
            unnamed_missing,
            ..gathered
        })
    }
}

/// A request to one server that nobody answered: that server is not answering.
fn not_answering(server: &str, e: AdminError) -> AdminError {
    match e {
        AdminError::NoResponders { .. } | AdminError::NoReplies { .. } => {
            AdminError::ServerNotAnswering {
                server: server.to_string(),
            }
        }
        other => other,
    }
}

/// `$SYS.REQ.USER.INFO` for any client.
pub(crate) async fn user_info(client: &Client, timeout: Duration) -> Result<UserInfo, AdminError> {
    let subject = "$SYS.REQ.USER.INFO";
    let reply = client.request_with(subject, None, b"", timeout).await?;
    let (_, data) = decode::<UserInfo>(subject, false, &reply.payload)?;
    match data {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(AdminError::Decode {
            subject: subject.into(),
            message: "the answer has no data".into(),
        }),
        Err(e) => Err(AdminError::Server {
            server: "?".into(),
            code: e.code,
            description: e.description,
        }),
    }
}

fn server_error(identity: &ServerIdentity, asked: &str, e: ApiErrorBody) -> AdminError {
    let server = if identity.name.is_empty() {
        asked.to_string()
    } else {
        identity.name.clone()
    };
    AdminError::Server {
        server,
        code: e.code,
        description: e.description,
    }
}

fn to_body(options: &impl Serialize) -> Result<Vec<u8>, AdminError> {
    serde_json::to_vec(options).map_err(|e| AdminError::InvalidArgument(e.to_string()))
}

/// The body, and whether it restricts which servers answer (the server's
/// `EventFilterOptions`).
fn to_body_filtered(options: &impl Serialize) -> Result<(Vec<u8>, bool), AdminError> {
    let value =
        serde_json::to_value(options).map_err(|e| AdminError::InvalidArgument(e.to_string()))?;
    let filtered = value.as_object().is_some_and(|o| {
        ["server_name", "cluster", "host", "tags", "domain"]
            .iter()
            .any(|k| o.contains_key(*k))
    });
    Ok((value.to_string().into_bytes(), filtered))
}

/// A name that goes into a subject as one token.
fn check_token(token: &str) -> Result<(), AdminError> {
    if token.is_empty()
        || token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
    {
        return Err(AdminError::InvalidArgument(format!(
            "{token:?} cannot be one subject token"
        )));
    }
    Ok(())
}
