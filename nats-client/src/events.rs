//! Connection events. They go out on a broadcast channel: sending never blocks the connection
//! task, and a listener that falls behind loses the oldest events (counted in statistics).

/// Something that happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Connected to a server (the first time).
    Connected {
        /// The server's address.
        server: String,
    },
    /// The connection was lost.
    Disconnected {
        /// The server it was connected to.
        server: String,
        /// Why.
        reason: String,
    },
    /// Connected again after a loss.
    Reconnected {
        /// The server now connected to.
        server: String,
    },
    /// The server announced lame-duck mode: it is about to shut down.
    LameDuck {
        /// The server in lame-duck mode.
        server: String,
    },
    /// A subscription went over its pending limits and started dropping messages. Sent once
    /// per episode: again only after the subscription has caught up.
    SlowConsumer {
        /// The subscription id.
        sid: u64,
        /// Its subject.
        subject: String,
    },
    /// The server sent `-ERR` (permissions violations included).
    ServerError {
        /// The server's text.
        message: String,
    },
    /// The client was closed.
    Closed,
}
