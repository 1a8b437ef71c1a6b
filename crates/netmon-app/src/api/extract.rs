//! Extractors whose rejections are problem details (axum's own answer in plain text).

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::auth::{AuthError, Principal};

/// Query parameters; unknown or malformed ones are a 400 naming them.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| Params(v))
            .map_err(|e| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Problem::invalid_field("query", detail)
            })
    }
}

/// The one path parameter of a route, percent-decoded.
pub(crate) struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| PathParam(v))
            .map_err(|e| Problem::invalid_field("path", e.body_text()))
    }
}

/// Why a request carries no principal; set by the gate for routes that need one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Malformed,
    Invalid,
    Revoked,
}

impl AuthFailure {
    pub(crate) fn of(e: &AuthError) -> Option<Self> {
        match e {
            AuthError::Missing => Some(Self::Missing),
            AuthError::Malformed => Some(Self::Malformed),
            AuthError::Invalid => Some(Self::Invalid),
            AuthError::Revoked => Some(Self::Revoked),
            AuthError::Store(_) => None,
        }
    }

    pub(crate) fn problem(self) -> Problem {
        let e = match self {
            Self::Missing => AuthError::Missing,
            Self::Malformed => AuthError::Malformed,
            Self::Invalid => AuthError::Invalid,
            Self::Revoked => AuthError::Revoked,
        };
        Problem::unauthorized(e.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        Err(parts
            .extensions
            .get::<AuthFailure>()
            .copied()
            .unwrap_or(AuthFailure::Missing)
            .problem())
    }
}
