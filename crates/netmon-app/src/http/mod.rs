//! The HTTP layer's shared pieces, below both the API (`api`) and the status pages (`status`):
//! the handler context, the route table's entry type and its OpenAPI description, and what
//! the dashboard keeps in memory (signed sessions, the live feed).

pub mod closer;
pub mod context;
pub mod limit;
pub mod live;
pub mod operation;
pub mod route;
pub mod session;

pub use closer::CloseConnection;
pub(crate) use context::Ctx;
pub use context::{ApiContext, ApiContextBuilder, ApiStores};
pub use operation::Operation;
pub use route::{Access, Route, Verb, route};
