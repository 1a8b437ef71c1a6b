//! A way for a handler to have its TCP connection closed: a host that serves connections itself
//! (`netmon up`) puts one in each request's extensions and closes the connection when it fires.
//! The live stream uses it for a client that stopped reading (see `http::live`); where no
//! host provides it (behind API Gateway), nothing streams.

use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct CloseConnection(Arc<Notify>);

impl CloseConnection {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn close(&self) {
        self.0.notify_one();
    }

    /// Resolves once [`CloseConnection::close`] was called (before or after).
    pub async fn closed(&self) {
        self.0.notified().await;
    }
}
