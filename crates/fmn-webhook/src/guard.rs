//! Which targets a webhook may reach: public unicast addresses only, on ports 80 and 443,
//! unless the operator allows more ports (`FMN_WEBHOOK_ALLOW_PORTS`) or private addresses
//! (`FMN_WEBHOOK_ALLOW_PRIVATE=1`, e.g. for tests on loopback, which allows any port too).
//! IPv6 forms that embed or reach an IPv4 address (IPv4-mapped and -compatible, 6to4,
//! Teredo, NAT64) are refused whole or judged by the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::PostError;

fn allowed_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // shared address space (carrier-grade NAT), 100.64.0.0/10
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24 (DS-Lite, NAT64 discovery…)
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // benchmarking, 198.18.0.0/15
        || (a == 198 && (18..20).contains(&b))
        // reserved, 240.0.0.0/4
        || a >= 240)
}

fn allowed_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return allowed_v4(v4);
    }
    let [first, second, ..] = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // IPv4-compatible ::a.b.c.d (deprecated; ::/96)
        || ip.segments()[..6].iter().all(|&s| s == 0)
        // 6to4 2002::/16 and Teredo 2001::/32 tunnel to an IPv4 address
        || first == 0x2002
        || (first == 0x2001 && second == 0)
        // NAT64 local-use 64:ff9b:1::/48
        || (first == 0x0064 && second == 0xff9b && ip.segments()[2] == 1)
        // unique local fc00::/7, link-local fe80::/10, site-local fec0::/10
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // documentation 2001:db8::/32
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 64:ff9b::/96 can reach private IPv4 through a translator
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// Whether `ip` is a public unicast address a webhook may be sent to.
pub fn allowed_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => allowed_v4(v4),
        IpAddr::V6(v6) => allowed_v6(v6),
    }
}

/// Ports a webhook may always be sent to.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Parses a webhook URL: http or https, a host, no credentials, port 80 or 443; a literal
/// IP address must be allowed (names are checked when resolved, at connect time).
pub fn check_target(url: &str, allow_private: bool) -> Result<Url, PostError> {
    check_target_with(url, allow_private, &[])
}

/// [`check_target`], also allowing the operator's `extra_ports`. `allow_private` (tests,
/// the local demo) allows every port.
pub fn check_target_with(
    url: &str,
    allow_private: bool,
    extra_ports: &[u16],
) -> Result<Url, PostError> {
    let refused = |why: &str| PostError::Refused(format!("{url}: {why}"));
    let parsed = Url::parse(url).map_err(|e| refused(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refused("only http and https URLs"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("no credentials in the URL"));
    }
    let port = parsed.port_or_known_default().unwrap_or(0);
    if !allow_private && !DEFAULT_PORTS.contains(&port) && !extra_ports.contains(&port) {
        return Err(refused(&format!(
            "port {port} (only 80 and 443 unless the operator allows it)"
        )));
    }
    let ip = match parsed.host() {
        None => return Err(refused("no host")),
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allow_private
        && !allowed_ip(ip)
    {
        return Err(refused("private, loopback or link-local address"));
    }
    Ok(parsed)
}

/// The client's resolver: resolves with the system resolver and refuses the whole name if
/// any of its addresses is not allowed. reqwest connects only to what this returns, so a
/// name that resolves differently at connect time than when it was checked cannot reach a
/// private address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !allowed_ip(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a private, loopback or link-local address",
                    bad.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17 item 11: every range, with neighbours that stay allowed.
    #[test]
    fn every_guarded_range_is_refused() {
        let table: &[(&str, bool)] = &[
            // IPv4-compatible IPv6 (::/96) of a private and of a public address
            ("::7f00:1", false),
            ("::a00:1", false),
            ("::808:808", false),
            // 6to4
            ("2002:a00:1::1", false),
            ("2002:808:808::1", false),
            // Teredo
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:1::1", true),
            // NAT64, well-known and local-use prefixes
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::a00:1", false),
            ("64:ff9c::1", true),
            // IETF protocol assignments 192.0.0.0/24
            ("192.0.0.8", false),
            ("192.0.0.170", false),
            ("192.0.1.1", true),
            ("::ffff:192.0.0.1", false),
            ("2606:4700:4700::1111", true),
        ];
        for (ip, allowed) in table {
            assert_eq!(allowed_ip(ip.parse().unwrap()), *allowed, "{ip}");
        }
    }

    #[test]
    fn only_ports_80_and_443_unless_allowed() {
        let table: &[(&str, &[u16], bool, bool)] = &[
            ("https://hooks.example.org/", &[], false, true),
            ("http://hooks.example.org/", &[], false, true),
            ("https://hooks.example.org:443/", &[], false, true),
            ("http://hooks.example.org:80/", &[], false, true),
            ("https://hooks.example.org:8443/", &[], false, false),
            ("http://hooks.example.org:22/", &[], false, false),
            ("http://hooks.example.org:6379/", &[], false, false),
            ("https://hooks.example.org:8443/", &[8443], false, true),
            ("http://127.0.0.1:8080/", &[], true, true),
        ];
        for (url, extra, private, ok) in table {
            assert_eq!(
                check_target_with(url, *private, extra).is_ok(),
                *ok,
                "{url} {extra:?}"
            );
        }
    }

    #[test]
    fn private_loopback_and_link_local_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!allowed_ip(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(allowed_ip(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_target("https://hooks.example.org/x", false).is_ok());
        for bad in [
            "ftp://example.org/",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://user:pw@example.org/",
            "not a url",
            "http://0x7f000001/",
        ] {
            assert!(
                matches!(check_target(bad, false), Err(PostError::Refused(_))),
                "{bad} should be refused"
            );
        }
        assert!(check_target("http://127.0.0.1:8080/", true).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let name: Name = "localhost".parse().unwrap();
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(name)
        .await;
        assert!(refused.is_err());
        let name: Name = "localhost".parse().unwrap();
        let allowed = GuardedResolver {
            allow_private: true,
        }
        .resolve(name)
        .await;
        assert!(allowed.is_ok());
    }
}
