//! Single-process adapters for `netmon up`: [`SqliteStore`], an embedded SQLite database
//! implementing every store port, and [`MemoryBus`], an in-process event bus whose `publish`
//! returns once subscribers have handled the events.

pub mod bus;
mod error;
pub mod sqlite;

pub use bus::{Ack, BoxFuture, Delivery, EventFilter, MemoryBus, Subscription, spawn_consumer};
pub use error::EmbeddedError;
pub use sqlite::{Pruned, Retention, RolledUp, SCHEMA_VERSION, SqliteStore};
