//! What a scatter-gather returns: each server's answer, the errors, and who did not answer.

use serde::Serialize;

use crate::models::{ApiErrorBody, ServerIdentity};

/// One server's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerReply<T> {
    /// Who answered.
    pub server: ServerIdentity,
    /// What it said.
    pub data: T,
}

/// A server that answered with an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerFailure {
    /// Who answered.
    pub server: ServerIdentity,
    /// Its error.
    pub error: ApiErrorBody,
}

/// The answers to one scatter-gather request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gathered<T> {
    /// The answers, sorted by server name.
    pub replies: Vec<ServerReply<T>>,
    /// Servers that answered with an error, sorted by name.
    pub failed: Vec<ServerFailure>,
    /// Known servers that did not answer, by name, sorted.
    pub missing: Vec<String>,
    /// Servers a count says exist (the JetStream meta group's size, the servers a server
    /// knows in the system account) that no answer named and that did not answer.
    pub unnamed_missing: usize,
}

impl<T> Gathered<T> {
    /// Every server answered (none failed, none missing).
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.missing.is_empty() && self.unnamed_missing == 0
    }

    /// The answer of the server with this name.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.replies
            .iter()
            .find(|r| r.server.name == name)
            .map(|r| &r.data)
    }

    /// The names of the servers that answered, failures included.
    pub(crate) fn answered(&self) -> impl Iterator<Item = &str> {
        self.replies
            .iter()
            .map(|r| r.server.name.as_str())
            .chain(self.failed.iter().map(|f| f.server.name.as_str()))
    }
}
