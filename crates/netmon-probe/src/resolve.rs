//! Name resolution behind a small port, so tests (and the SSRF tests in particular) can decide
//! what a hostname resolves to.

use std::collections::HashMap;
use std::net::IpAddr;

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{host} did not resolve to any address")]
    NoAddresses { host: String },
    #[error("resolving {host} failed: {message}")]
    Failed { host: String, message: String },
}

#[async_trait]
pub trait Resolver: Send + Sync {
    /// All addresses of `host`, in preference order. `port` is passed along because
    /// `getaddrinfo` wants one; it does not change the answer.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError>;
}

/// The operating system's resolver (`getaddrinfo`, which tokio runs on its blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError> {
        let addrs =
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| ResolveError::Failed {
                    host: host.to_owned(),
                    message: e.to_string(),
                })?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for a in addrs {
            // getaddrinfo repeats addresses once per socket type; keep the first of each.
            if !ips.contains(&a.ip()) {
                ips.push(a.ip());
            }
        }
        if ips.is_empty() {
            return Err(ResolveError::NoAddresses {
                host: host.to_owned(),
            });
        }
        Ok(ips)
    }
}

/// A fixed table of hostname → addresses; unknown names do not resolve. For tests.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver(pub HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, host: &str, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.0
            .insert(host.to_ascii_lowercase(), ips.into_iter().collect());
        self
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<IpAddr>, ResolveError> {
        match self.0.get(&host.to_ascii_lowercase()) {
            Some(ips) if !ips.is_empty() => Ok(ips.clone()),
            _ => Err(ResolveError::NoAddresses {
                host: host.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_resolver_is_case_insensitive_and_refuses_unknown_names() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let r = StaticResolver::new().with("Example.TEST", [ip]);
        assert_eq!(r.resolve("example.test", 80).await, Ok(vec![ip]));
        assert_eq!(
            r.resolve("other.test", 80).await,
            Err(ResolveError::NoAddresses {
                host: "other.test".into()
            })
        );
    }

    #[tokio::test]
    async fn system_resolver_answers_for_ip_literals_without_the_network() {
        let ips = SystemResolver.resolve("127.0.0.1", 80).await.unwrap();
        assert_eq!(ips, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }
}
