//! The client IP the per-IP rate limit counts: from the header a trusted proxy sets
//! (`abuse.client_ip_header`, its last value) or else the TCP peer address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// The request's client IP, if known (`None` when served without connect info, e.g. in
/// `oneshot` tests, and no trusted header is configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(resolve(
            &parts.headers,
            &state.config.abuse.client_ip_header,
            peer,
        )))
    }
}

/// The last address in the trusted header (the one our proxy appended; earlier ones are what the
/// client claimed), else the peer address. A header that does not parse falls back to the peer.
pub fn resolve(headers: &HeaderMap, header: &str, peer: Option<IpAddr>) -> Option<IpAddr> {
    if header.is_empty() {
        return peer;
    }
    let from_header = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| parse_ip(last.trim()));
    from_header.or(peer)
}

/// An IP, also in the `ip:port` and `[v6]:port` forms some proxies write.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_last_forwarded_address_counts() {
        let peer = Some("10.0.0.1".parse().unwrap());
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(
            resolve(&h, "x-forwarded-for", peer),
            Some("203.0.113.7".parse().unwrap())
        );
        let h = headers(&["6.6.6.6", "[2001:db8::1]:443"]);
        assert_eq!(
            resolve(&h, "x-forwarded-for", peer),
            Some("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn without_a_trusted_header_the_peer_counts() {
        let peer = Some("10.0.0.1".parse().unwrap());
        let h = headers(&["203.0.113.7"]);
        assert_eq!(resolve(&h, "", peer), peer, "header not trusted");
        assert_eq!(resolve(&HeaderMap::new(), "x-forwarded-for", peer), peer);
        assert_eq!(
            resolve(&headers(&["garbage"]), "x-forwarded-for", peer),
            peer
        );
    }
}
