//! [`QueueAdmin`]: the RabbitMQ management-API calls the migrated services make, over `$SYS`.
//!
//! A vhost's connections with their client-given names and closing a connection by name
//! (over `$SYS`); listing and deleting amqp-compat queues (over the vhost account's JetStream,
//! see [`QueueAdmin::list_queues`]).
//!
//! A vhost is a NATS account. Both are the unit of isolation (a vhost has its own exchanges,
//! queues and permissions; an account its own subject space, streams and users), and a
//! connection belongs to exactly one of each. RabbitMQ's default vhost `/` has no account of
//! that name, so [`VhostMapping`] names the account it stands for (and any other vhost whose
//! account is named differently).

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::models::Connz;
use crate::options::{ConnState, ConnzOptions};
use crate::{AdminError, Gathered, SysClient};

/// Which account a vhost is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostMapping {
    /// The account of the default vhost `/`.
    pub default_account: String,
    /// Vhosts whose account is not named like them.
    pub overrides: BTreeMap<String, String>,
}

impl VhostMapping {
    /// `/` is `default_account`; every other vhost is the account of its own name.
    pub fn new(default_account: impl Into<String>) -> Self {
        VhostMapping {
            default_account: default_account.into(),
            overrides: BTreeMap::new(),
        }
    }

    /// Maps `vhost` to `account`.
    pub fn with(mut self, vhost: impl Into<String>, account: impl Into<String>) -> Self {
        self.overrides.insert(vhost.into(), account.into());
        self
    }

    /// The account of `vhost`.
    pub fn account(&self, vhost: &str) -> String {
        if let Some(account) = self.overrides.get(vhost) {
            return account.clone();
        }
        if vhost.is_empty() || vhost == "/" {
            return self.default_account.clone();
        }
        vhost.to_string()
    }
}

/// One client connection, as the management API's connection listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// Unique in the cluster: `<server name>/<cid>`; what
    /// [`close_connection`](QueueAdmin::close_connection) takes.
    pub name: String,
    /// The name the client gave when connecting (`ConnectOptions::name`), if any.
    pub user_provided_name: Option<String>,
    /// The connection id on its server.
    pub cid: u64,
    /// The server's name.
    pub server: String,
    /// The server's id.
    pub server_id: String,
    /// The account (the vhost); [`GLOBAL_ACCOUNT`] for clients without one.
    pub account: Option<String>,
    /// The authenticated user.
    pub user: Option<String>,
    /// The client's address.
    pub peer: String,
    /// When it connected.
    pub connected_at: Option<OffsetDateTime>,
}

/// A connection [`close_connection`](QueueAdmin::close_connection) closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosedConnection {
    /// The server it was on.
    pub server: String,
    /// Its connection id there.
    pub cid: u64,
    /// Its client-given name.
    pub user_provided_name: Option<String>,
}

/// The management calls, over a [`SysClient`].
///
/// ```no_run
/// # async fn demo(sys: admin::SysClient) -> Result<(), admin::AdminError> {
/// use admin::{QueueAdmin, VhostMapping};
/// let queues = QueueAdmin::new(&sys, VhostMapping::new("APP"));
/// for conn in queues.list_connections("/").await? {
///     println!("{} {:?}", conn.name, conn.user_provided_name);
/// }
/// queues.close_connection("billing-worker-1").await?; // kicked; it reconnects
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QueueAdmin<'a> {
    sys: Option<&'a SysClient>,
    pub(crate) js: Option<jetstream::Context>,
    vhosts: VhostMapping,
    page_size: u64,
}

/// The page size asked of each server by default; servers with more are asked again from an
/// offset.
const CONNZ_PAGE: u64 = 1024;

/// The account of clients configured without one (and of RabbitMQ's `/` on a server
/// without accounts).
pub const GLOBAL_ACCOUNT: &str = "$G";

impl<'a> QueueAdmin<'a> {
    /// Management calls over `sys`, with `vhosts` saying which account a vhost is.
    pub fn new(sys: &'a SysClient, vhosts: VhostMapping) -> Self {
        QueueAdmin {
            sys: Some(sys),
            js: None,
            vhosts,
            page_size: CONNZ_PAGE,
        }
    }

    /// Queue calls only ([`list_queues`](Self::list_queues),
    /// [`delete_queue`](Self::delete_queue)), over `js`: a JetStream context of the account
    /// the vhosts' queues live in (the services' own account, not the system account).
    /// Connection calls fail with [`AdminError::NeedsSystemAccount`].
    pub fn over_jetstream(js: jetstream::Context) -> Self {
        QueueAdmin {
            sys: None,
            js: Some(js),
            vhosts: VhostMapping::new(GLOBAL_ACCOUNT),
            page_size: CONNZ_PAGE,
        }
    }

    /// Adds the JetStream context the queue calls use: one of the account the vhosts' queues
    /// live in (a `$SYS` client cannot see another account's streams).
    pub fn with_jetstream(mut self, js: jetstream::Context) -> Self {
        self.js = Some(js);
        self
    }

    fn sys(&self) -> Result<&'a SysClient, AdminError> {
        self.sys.ok_or(AdminError::NeedsSystemAccount)
    }

    /// Asks each server for at most `n` connections at a time (default 1024), paging
    /// through the rest.
    pub fn page_size(mut self, n: u64) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The open connections of `vhost` on every server, sorted by server and cid. Fails with
    /// [`AdminError::Incomplete`] if a server did not answer, since a partial list would be
    /// taken for the whole.
    pub async fn list_connections(&self, vhost: &str) -> Result<Vec<ConnectionInfo>, AdminError> {
        let account = self.vhosts.account(vhost);
        self.connections(Some(account), true).await
    }

    /// Closes connections by name: either the unique `<server>/<cid>` of
    /// [`ConnectionInfo::name`], or a client-given name, in which case every connection with
    /// that name (in any account) is closed. A client with reconnect enabled comes back.
    pub async fn close_connection(&self, name: &str) -> Result<Vec<ClosedConnection>, AdminError> {
        if let Some((server, cid)) = name
            .rsplit_once('/')
            .and_then(|(s, c)| Some((s, c.parse::<u64>().ok()?)))
        {
            let known = self.sys()?.known_servers();
            if known.iter().any(|(n, id)| n == server || id == server) {
                self.sys()?.kick(server, cid).await?;
                return Ok(vec![ClosedConnection {
                    server: server.to_string(),
                    cid,
                    user_provided_name: None,
                }]);
            }
        }
        let matching: Vec<ConnectionInfo> = self
            // A server that does not answer holds no connection to close.
            .connections(None, false)
            .await?
            .into_iter()
            .filter(|c| c.user_provided_name.as_deref() == Some(name))
            .collect();
        if matching.is_empty() {
            return Err(AdminError::ConnectionNotFound {
                name: name.to_string(),
            });
        }
        let mut closed = Vec::new();
        for conn in matching {
            self.sys()?.kick(&conn.server_id, conn.cid).await?;
            closed.push(ClosedConnection {
                server: conn.server,
                cid: conn.cid,
                user_provided_name: conn.user_provided_name,
            });
        }
        Ok(closed)
    }

    /// Every open connection (of `account`); with `complete`, an error when a server did not
    /// answer.
    async fn connections(
        &self,
        account: Option<String>,
        complete: bool,
    ) -> Result<Vec<ConnectionInfo>, AdminError> {
        let options = ConnzOptions {
            auth: true,
            limit: self.page_size,
            account,
            state: ConnState::Open,
            ..ConnzOptions::default()
        };
        let sys = self.sys()?;
        let gathered: Gathered<Connz> = sys.connz(&options).await?;
        if let Some(f) = gathered.failed.first() {
            return Err(AdminError::Server {
                server: f.server.name.clone(),
                code: f.error.code,
                description: f.error.description.clone(),
            });
        }
        if complete && !gathered.missing.is_empty() {
            return Err(AdminError::Incomplete {
                missing: gathered.missing,
            });
        }
        let mut out = Vec::new();
        for reply in gathered.replies {
            let mut page = reply.data;
            let mut offset = 0;
            loop {
                let got = page.connections.len() as u64;
                out.extend(page.connections.into_iter().map(|c| ConnectionInfo {
                    name: format!("{}/{}", reply.server.name, c.cid),
                    user_provided_name: c.name.filter(|n| !n.is_empty()),
                    cid: c.cid,
                    server: reply.server.name.clone(),
                    server_id: reply.server.id.clone(),
                    // The server leaves the global account's name out.
                    account: Some(c.account.unwrap_or_else(|| GLOBAL_ACCOUNT.to_string())),
                    user: c.authorized_user,
                    peer: format!("{}:{}", c.ip, c.port),
                    connected_at: c.start,
                }));
                offset += got;
                // `num_connections` is the page's size, not the total: a full page may have
                // a next one.
                if got < self.page_size {
                    break;
                }
                let next = ConnzOptions {
                    offset,
                    ..options.clone()
                };
                page = sys
                    .server_request::<Connz>(&reply.server.id, crate::ServerKind::Connz, &next)
                    .await?
                    .data;
            }
        }
        out.sort_by(|a, b| (&a.server, a.cid).cmp(&(&b.server, b.cid)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhosts_are_accounts() {
        let map = VhostMapping::new("APP").with("legacy", "OLD");
        assert_eq!(map.account("/"), "APP");
        assert_eq!(map.account(""), "APP");
        assert_eq!(map.account("billing"), "billing");
        assert_eq!(map.account("legacy"), "OLD");
    }
}
