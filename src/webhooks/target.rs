//! Where a webhook may go. A target is an outbound URL chosen by a user, so it could point the node
//! at its own neighbours (SSRF): unless the operator allows private targets, every address the
//! host resolves to must be public (not loopback, private, link-local, unique-local, shared,
//! multicast or unspecified), and the request then goes to the address checked, never to one
//! resolved again (DNS rebinding), and follows no redirect.

use std::net::{IpAddr, SocketAddr};

use url::Url;

/// Why a target is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("must be an absolute http or https URL: {0}")]
    Malformed(String),
    #[error("must use https (http is allowed only with webhooks.allow_private_targets)")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("{host} cannot be resolved: {reason}")]
    Unresolved { host: String, reason: String },
    #[error(
        "{host} resolves to {addr}, a loopback, private or link-local address; the operator can allow such targets \
         with webhooks.allow_private_targets"
    )]
    Private { host: String, addr: IpAddr },
}

/// A target checked just now: its URL, its host, and the address to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// Parses a target as given by a user; checks its form only.
pub fn parse(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|e| TargetError::Malformed(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(TargetError::NotHttps),
        other => return Err(TargetError::Malformed(format!("the scheme {other} is not http or https"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::Malformed("no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    Ok(url)
}

/// Resolves a target and checks every address it resolves to.
pub async fn resolve(raw: &str, allow_private: bool) -> Result<Target, TargetError> {
    let url = parse(raw, allow_private)?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let unresolved = |reason: String| TargetError::Unresolved { host: host.clone(), reason };
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| unresolved(e.to_string()))?.collect();
    let first = *addrs.first().ok_or_else(|| unresolved("no address".into()))?;
    if !allow_private && let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(TargetError::Private { host, addr: private.ip() });
    }
    Ok(Target { url, host, addr: first })
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_link_local_and_shared_addresses_are_not_public() {
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2a00:1450:4010::200e"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_target_needs_https_and_no_credentials() {
        assert_eq!(parse("http://guards.example/hook", false), Err(TargetError::NotHttps));
        assert_eq!(parse("https://u:p@guards.example/hook", false), Err(TargetError::Credentials));
        assert!(parse("ftp://guards.example/", true).is_err());
        assert!(parse("https://guards.example/hook", false).is_ok());
    }
}
