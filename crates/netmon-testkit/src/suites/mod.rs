//! Behavioural suites: one module per port; each adapter's tests call them.
//!
//! Every suite takes a factory returning a store, and calls it once per case so cases do not
//! see each other's writes. A factory may still hand back a store shared with earlier runs (a
//! DynamoDB table with a unique prefix, say), so cases never assume an empty store: each uses
//! fresh tenant ids, keys and event ids from [`fixtures::unique`] and filters global listings
//! (`all_targets`, `pending`, `last_pings`) down to its own records.
//!
//! Failures panic with a message naming the case, as test assertions do.

pub mod api_keys;
pub mod channel_store;
pub mod fixtures;
pub mod heartbeat;
pub mod history;
pub mod idempotency;
pub mod maintenance;
pub mod notification_log;
pub mod outbox;
pub mod replies;
pub mod state_store;
pub mod target_store;

use std::future::Future;

use netmon_core::ports::{
    ApiKeyStore, ChannelStore, HeartbeatStore, HistoryStore, Idempotency, MaintenanceStore,
    NotificationLog, Outbox, ReplyStore, StateStore, TargetStore,
};

/// Runs every store suite against an adapter that implements all the store ports on one type
/// (the embedded SQLite store does).
pub async fn run_all_store_suites<S, F, Fut>(new_store: F)
where
    S: TargetStore
        + ChannelStore
        + StateStore
        + Outbox
        + Idempotency
        + HistoryStore
        + HeartbeatStore
        + ApiKeyStore
        + MaintenanceStore
        + ReplyStore
        + NotificationLog,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    target_store::run_all(&new_store).await;
    channel_store::run_all(&new_store).await;
    state_store::run_all(&new_store).await;
    outbox::run_all(&new_store).await;
    idempotency::run_all(&new_store).await;
    history::run_all(&new_store).await;
    heartbeat::run_all(&new_store).await;
    api_keys::run_all(&new_store).await;
    maintenance::run_all(&new_store).await;
    replies::run_all(&new_store).await;
    notification_log::run_all(&new_store).await;
}

/// Every suite except `HistoryStore`'s, for adapters that keep history elsewhere (DynamoDB's
/// state table).
pub async fn run_state_table_suites<S, F, Fut>(new_store: F)
where
    S: TargetStore
        + ChannelStore
        + StateStore
        + Outbox
        + Idempotency
        + HeartbeatStore
        + ApiKeyStore
        + MaintenanceStore
        + ReplyStore
        + NotificationLog,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    target_store::run_all(&new_store).await;
    channel_store::run_all(&new_store).await;
    state_store::run_all(&new_store).await;
    outbox::run_all(&new_store).await;
    idempotency::run_all(&new_store).await;
    heartbeat::run_all(&new_store).await;
    api_keys::run_all(&new_store).await;
    maintenance::run_all(&new_store).await;
    replies::run_all(&new_store).await;
    notification_log::run_all(&new_store).await;
}
