//! SSRF guard: which addresses a probe may connect to.
//!
//! Pure functions on [`IpAddr`]. The prober resolves a name once, checks every address here and
//! connects to exactly the address it checked, so a DNS answer that changes between "check" and
//! "connect" (rebinding) cannot slip through. Redirect hops are checked the same way.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ProbeConfig;

/// What an address is, from the point of view of "may a tenant make us connect there".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// Cloud instance metadata, credential and platform endpoints: AWS (169.254.169.254,
    /// 169.254.170.2, fd00:ec2::/96), GCP (fd20:ce::254), Azure (168.63.129.16), Alibaba
    /// (100.100.100.200), Oracle Cloud Classic (192.0.0.192), and 169.254.169.254 in every IPv6
    /// form that reaches it (IPv4-mapped, NAT64, 6to4). Refused unless link-local is allowed,
    /// even where the range around them (CGNAT, ULA) is allowed as private.
    Metadata,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, 100.64.0.0/10 (CGNAT), fc00::/7 (ULA), fec0::/10 (old site-local).
    Private,
    /// 0.0.0.0/8 and ::. Connecting to 0.0.0.0 reaches the local host on Linux, so it is treated
    /// like loopback.
    Unspecified,
    /// Multicast, broadcast and reserved ranges: never a sensible unicast TCP destination.
    NotUnicast,
    Public,
}

impl AddrClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddrClass::Metadata => "cloud metadata endpoint",
            AddrClass::LinkLocal => "link-local address",
            AddrClass::Loopback => "loopback address",
            AddrClass::Private => "private network address",
            AddrClass::Unspecified => "unspecified address",
            AddrClass::NotUnicast => "multicast, broadcast or reserved address",
            AddrClass::Public => "public address",
        }
    }
}

/// Metadata endpoints outside 169.254.0.0/16 (or that must not count as merely link-local).
const METADATA_V4: [Ipv4Addr; 5] = [
    // AWS EC2 (also GCP, Azure IMDS, OpenStack, DigitalOcean, Oracle, Hetzner...).
    Ipv4Addr::new(169, 254, 169, 254),
    // AWS ECS task credentials.
    Ipv4Addr::new(169, 254, 170, 2),
    // Azure's wireserver: not link-local, but hands out VM configuration the same way.
    Ipv4Addr::new(168, 63, 129, 16),
    // Alibaba Cloud, inside CGNAT space, which `allow_private` would otherwise permit.
    Ipv4Addr::new(100, 100, 100, 200),
    // Oracle Cloud Classic.
    Ipv4Addr::new(192, 0, 0, 192),
];
/// GCP's metadata server for IPv6-only instances.
const GCP_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254);

pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let o = ip.octets();
    if METADATA_V4.contains(&ip) {
        AddrClass::Metadata
    } else if o[0] == 169 && o[1] == 254 {
        AddrClass::LinkLocal
    } else if o[0] == 127 {
        AddrClass::Loopback
    } else if o[0] == 10
        || (o[0] == 172 && (16..=31).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 100 && (64..=127).contains(&o[1]))
    {
        AddrClass::Private
    } else if o[0] == 0 {
        AddrClass::Unspecified
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        AddrClass::NotUnicast
    } else {
        AddrClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    // An IPv4-mapped address (::ffff:a.b.c.d) reaches the IPv4 host on a dual-stack socket.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64 (64:ff9b::/96, and 64:ff9b:1::/96 in the local-use range) reaches the embedded IPv4
    // address through a translator on the network.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] <= 1 && s[3..6] == [0, 0, 0] {
        return classify_v4(v4(s[6], s[7]));
    }
    // 6to4 (2002:AABB:CCDD::/48) embeds an IPv4 address; one that is not public is refused as
    // what it embeds (a relay or local router may deliver it).
    if s[0] == 0x2002 {
        let class = classify_v4(v4(s[1], s[2]));
        if class != AddrClass::Public {
            return class;
        }
    }
    // AWS's IPv6 endpoints (metadata fd00:ec2::254, DNS ::253, NTP ::123) share fd00:ec2::/96.
    let aws_v6 = s[0] == 0xfd00 && s[1] == 0x0ec2 && s[2..6] == [0, 0, 0, 0];
    if aws_v6 || ip == GCP_METADATA_V6 {
        AddrClass::Metadata
    } else if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddrClass::LinkLocal
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        // fec0::/10 is deprecated site-local, still routed internally by some networks.
        AddrClass::Private
    } else if ip.is_multicast() || s[..6] == [0, 0, 0, 0, 0, 0] {
        // ::/96 other than :: and ::1 is the deprecated IPv4-compatible range; nothing routes it.
        AddrClass::NotUnicast
    } else {
        AddrClass::Public
    }
}

/// Why the guard refused an address. The message names the address, what it is and which
/// setting would permit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to connect to {ip} ({}){}", class.describe(), hint(*class))]
pub struct Refused {
    pub ip: IpAddr,
    pub class: AddrClass,
}

fn hint(class: AddrClass) -> &'static str {
    match class {
        AddrClass::Metadata | AddrClass::LinkLocal => "; set allow_link_local to permit",
        AddrClass::Loopback | AddrClass::Private | AddrClass::Unspecified => {
            "; set allow_private to permit"
        }
        AddrClass::NotUnicast | AddrClass::Public => "",
    }
}

/// Whether `config` permits connecting to `ip`.
pub fn check(ip: IpAddr, config: &ProbeConfig) -> Result<(), Refused> {
    let class = classify(ip);
    let allowed = match class {
        AddrClass::Public => true,
        AddrClass::Metadata | AddrClass::LinkLocal => config.allow_link_local,
        AddrClass::Loopback | AddrClass::Private | AddrClass::Unspecified => config.allow_private,
        AddrClass::NotUnicast => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Refused { ip, class })
    }
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddrClass::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies() {
        let table = [
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("168.63.129.16", Metadata),
            ("fd00:ec2::254", Metadata),
            ("fd00:ec2::253", Metadata),
            ("fd20:ce::254", Metadata),
            ("100.100.100.200", Metadata),
            ("::ffff:100.100.100.200", Metadata),
            ("64:ff9b::6464:64c8", Metadata),
            ("64:ff9b:1::a9fe:a9fe", Metadata),
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:7f00:1::1", Loopback),
            ("2002:0808:0808::1", Public),
            ("192.0.0.192", Metadata),
            ("100.100.100.201", Private),
            ("fd00:ec2:1::254", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("169.254.169.253", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("::ffff:10.1.2.3", Private),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("224.0.0.1", NotUnicast),
            ("255.255.255.255", NotUnicast),
            ("240.0.0.1", NotUnicast),
            ("ff02::1", NotUnicast),
            ("::1.2.3.4", NotUnicast),
            ("8.8.8.8", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("169.253.255.255", Public),
            ("2606:4700::1111", Public),
            ("fec0::1", Private),
            ("::ffff:1.1.1.1", Public),
        ];
        for (addr, want) in table {
            assert_eq!(classify(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn public_only_refuses_everything_internal() {
        let cfg = ProbeConfig::new(false, false);
        for addr in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fe80::1",
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "100.64.0.1",
            "fd00::1",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(check(ip(addr), &cfg).is_err(), "{addr} should be refused");
        }
        assert!(check(ip("1.1.1.1"), &cfg).is_ok());
        assert!(check(ip("2606:4700::1111"), &cfg).is_ok());
    }

    #[test]
    fn private_allowed_still_refuses_link_local() {
        let cfg = ProbeConfig::new(true, false);
        for addr in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "192.168.0.10",
            "fd12::1",
            "1.1.1.1",
        ] {
            assert!(check(ip(addr), &cfg).is_ok(), "{addr} should be allowed");
        }
        for addr in [
            "169.254.169.254",
            "fd00:ec2::254",
            "fd20:ce::254",
            "100.100.100.200",
            "169.254.1.1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(check(ip(addr), &cfg).is_err(), "{addr} should be refused");
        }
    }

    #[test]
    fn link_local_switch_permits_metadata_but_never_multicast() {
        let cfg = ProbeConfig {
            allow_link_local: true,
            ..ProbeConfig::new(false, false)
        };
        assert!(check(ip("169.254.169.254"), &cfg).is_ok());
        assert!(check(ip("fe80::1"), &cfg).is_ok());
        assert!(check(ip("127.0.0.1"), &cfg).is_err());
        let all = ProbeConfig {
            allow_link_local: true,
            allow_private: true,
            ..ProbeConfig::new(false, false)
        };
        assert!(check(ip("224.0.0.1"), &all).is_err());
    }

    #[test]
    fn refusal_message_names_address_category_and_setting() {
        let cfg = ProbeConfig::new(false, false);
        let err = check(ip("169.254.169.254"), &cfg).unwrap_err().to_string();
        assert_eq!(
            err,
            "refused to connect to 169.254.169.254 (cloud metadata endpoint); \
             set allow_link_local to permit"
        );
        let err = check(ip("127.0.0.1"), &cfg).unwrap_err().to_string();
        assert_eq!(
            err,
            "refused to connect to 127.0.0.1 (loopback address); set allow_private to permit"
        );
    }
}
