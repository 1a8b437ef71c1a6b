//! The HTTP layer's shared pieces, below both the API (`api`) and the status pages (`status`):
//! the handler context, the route table's entry type and its OpenAPI description.

pub mod context;
pub mod limit;
pub mod operation;
pub mod route;

pub(crate) use context::Ctx;
pub use context::{ApiContext, ApiContextBuilder, ApiStores};
pub use operation::Operation;
pub use route::{Access, Route, Verb, route};
