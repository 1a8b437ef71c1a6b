//! netmon's domain. Nothing here knows about AWS, SQLite or a particular async runtime.

pub mod apikey;
pub mod channel;
pub mod conditions;
pub mod duration;
pub mod events;
pub mod group;
pub mod history;
pub mod ids;
pub mod incident;
pub mod jobs;
pub mod maintenance;
pub mod notification;
pub mod observation;
pub mod ports;
pub mod result;
pub mod rpc;
pub mod schedule;
pub mod target;

pub use duration::HumanDuration;
pub use ids::{ChannelId, TargetId, TenantId, WindowId};
