//! The listeners: their socket addresses, whether they collide, and who may connect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::problems::Problems;

/// `web.listen` when the config does not set it: loopback, so /metrics is not exposed by accident.
pub const DEFAULT_WEB_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9477));

pub(super) fn validate_cidrs(raw: Vec<String>, p: &mut Problems) -> Option<Vec<ipnet::IpNet>> {
    let mut nets = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, text) in raw.iter().enumerate() {
        let text = text.trim();
        // A bare address means that one host.
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => {
                ok = false;
                p.push(
                    format!("callback.allowed_cidrs[{i}]"),
                    format!("{text:?} is not a network; expected CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32"),
                );
            }
        }
    }
    ok.then_some(nets)
}

pub(super) fn parse_listen(
    path: &str,
    raw: &str,
    example: &str,
    p: &mut Problems,
) -> Option<SocketAddr> {
    match raw.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.push(
                path,
                format!(
                    "{raw:?} is not a socket address; expected IP:PORT, e.g. {example} ([::]:PORT for IPv6)"
                ),
            );
            None
        }
    }
}

/// Whether binding both addresses would fail with "address in use". Port 0 picks a free port.
pub(super) fn listeners_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let (a, b) = (a.ip(), b.ip());
    match (a, b) {
        _ if a == b => true,
        // A wildcard takes the port on every address of its family; on Linux [::] also takes
        // the IPv4 addresses (dual stack).
        (IpAddr::V4(x), IpAddr::V4(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V6(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V4(_)) | (IpAddr::V4(_), IpAddr::V6(x)) => x.is_unspecified(),
    }
}
