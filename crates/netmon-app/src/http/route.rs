//! The route table's entry: method, path, access and OpenAPI operation, declared once and read by
//! both the router and `/openapi.json` (`api::router`).

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};

use super::context::ApiContext;
use super::operation::Operation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
    Head,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
            Verb::Head => MethodFilter::HEAD,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
            Verb::Head => "head",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Needs a valid API key; the handler acts for the key's tenant.
    Key,
}

/// One operation: what the router serves and what `/openapi.json` says about it.
pub struct Route {
    pub verb: Verb,
    /// axum path syntax, which is also OpenAPI's: `/v1/targets/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub doc: Operation,
    pub(crate) handler: MethodRouter<Arc<ApiContext>>,
}

impl Route {
    /// Adds an axum extension to this route only (state shared by a few routes, such as the
    /// status page caches).
    pub(crate) fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.handler = self.handler.layer(axum::Extension(value));
        self
    }
}

/// Declares a route. The handler is routed for exactly `verb` (GET also answers HEAD).
pub fn route<H, T>(
    verb: Verb,
    path: &'static str,
    access: Access,
    doc: Operation,
    handler: H,
) -> Route
where
    H: Handler<T, Arc<ApiContext>>,
    T: 'static,
{
    Route {
        verb,
        path,
        access,
        doc,
        handler: axum::routing::on(verb.filter(), handler),
    }
}
