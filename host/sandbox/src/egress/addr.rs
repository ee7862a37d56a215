//! Address rules for outbound requests: classifying addresses into the ranges the host refuses
//! unless granted.
//!
//! Allowlists that compare host names are bypassed by odd IP spellings (`2130706433`,
//! `0x7f.1`, `0177.0.0.1`) and by DNS answers; so the gate normalises literals (with
//! [`tollgate_contract::pattern::parse_ip_literal`], the rule host patterns use too) and checks
//! every *resolved* address with [`blocked_range`] before connecting to exactly that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The named ranges outbound requests may not reach unless the operator grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedRange {
    Loopback,
    Private,
    LinkLocal,
    Cgnat,
    Multicast,
    Unspecified,
    Broadcast,
    CloudMetadata,
    Reserved,
    UniqueLocal,
    Documentation,
}

impl BlockedRange {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedRange::Loopback => "loopback",
            BlockedRange::Private => "private",
            BlockedRange::LinkLocal => "link-local",
            BlockedRange::Cgnat => "carrier-grade NAT",
            BlockedRange::Multicast => "multicast",
            BlockedRange::Unspecified => "unspecified",
            BlockedRange::Broadcast => "broadcast",
            BlockedRange::CloudMetadata => "cloud metadata",
            BlockedRange::Reserved => "reserved",
            BlockedRange::UniqueLocal => "unique-local",
            BlockedRange::Documentation => "documentation",
        }
    }
}

/// Which refused range `ip` falls in, if any. IPv4-mapped and IPv4-compatible IPv6 addresses
/// are judged as the IPv4 address they carry.
pub fn blocked_range(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return blocked_v4(v4);
            }
            blocked_v6(v6)
        }
    }
}

/// The address as the range checks judge it: the IPv4 address an IPv6 form carries, else
/// itself. Opening `::ffff:0:0/96` must not open every IPv4 address behind it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT, ::ffff:0:0/96), ::a.b.c.d (deprecated
    // compatible), 64:ff9b::a.b.c.d (NAT64)
    let mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
    let siit = s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0;
    let compatible = s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 carries A.B.C.D.
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    (mapped || siit || compatible || nat64)
        .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
}

fn blocked_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    let o = ip.octets();
    Some(match o {
        [169, 254, 169, 254] | [100, 100, 100, 200] => BlockedRange::CloudMetadata,
        [0, ..] => BlockedRange::Unspecified,
        [127, ..] => BlockedRange::Loopback,
        [10, ..] | [192, 168, ..] => BlockedRange::Private,
        [172, b, ..] if (16..=31).contains(&b) => BlockedRange::Private,
        [169, 254, ..] => BlockedRange::LinkLocal,
        [100, b, ..] if (64..=127).contains(&b) => BlockedRange::Cgnat,
        [a, ..] if (224..=239).contains(&a) => BlockedRange::Multicast,
        [255, 255, 255, 255] => BlockedRange::Broadcast,
        [a, ..] if a >= 240 => BlockedRange::Reserved,
        [192, 0, 0, _] => BlockedRange::Reserved,
        [198, 18 | 19, ..] => BlockedRange::Reserved,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => BlockedRange::Documentation,
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    let s = ip.segments();
    Some(if ip.is_unspecified() {
        BlockedRange::Unspecified
    } else if ip.is_loopback() {
        BlockedRange::Loopback
    } else if s[0] & 0xffc0 == 0xfe80 {
        BlockedRange::LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 {
        // fd00:ec2::254 is AWS's IPv6 metadata endpoint.
        if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
            BlockedRange::CloudMetadata
        } else {
            BlockedRange::UniqueLocal
        }
    } else if s[0] & 0xff00 == 0xff00 {
        BlockedRange::Multicast
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        BlockedRange::Documentation
    } else if s[0] & 0xffc0 == 0xfec0
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
    {
        // deprecated site-local, discard-only, local-use NAT64 (64:ff9b:1::/48)
        BlockedRange::Reserved
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_contract::pattern::parse_ip_literal;

    #[test]
    fn ipv6_literals() {
        assert_eq!(parse_ip_literal("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(parse_ip_literal("::ffff:127.0.0.1").map(blocked_range), Some(Some(BlockedRange::Loopback)));
        assert_eq!(parse_ip_literal("[::ffff:7f00:1]").map(blocked_range), Some(Some(BlockedRange::Loopback)));
        assert_eq!(
            parse_ip_literal("[::ffff:169.254.169.254]").map(blocked_range),
            Some(Some(BlockedRange::CloudMetadata))
        );
    }

    #[test]
    fn ranges() {
        let cases = [
            ("127.0.0.1", Some(BlockedRange::Loopback)),
            ("10.1.2.3", Some(BlockedRange::Private)),
            ("172.16.0.1", Some(BlockedRange::Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(BlockedRange::Private)),
            ("169.254.169.254", Some(BlockedRange::CloudMetadata)),
            ("169.254.1.1", Some(BlockedRange::LinkLocal)),
            ("100.64.0.1", Some(BlockedRange::Cgnat)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(BlockedRange::Multicast)),
            ("0.0.0.0", Some(BlockedRange::Unspecified)),
            ("255.255.255.255", Some(BlockedRange::Broadcast)),
            ("93.184.216.34", None),
            ("8.8.8.8", None),
            ("[::]", Some(BlockedRange::Unspecified)),
            ("[fe80::1]", Some(BlockedRange::LinkLocal)),
            ("[fd00::1]", Some(BlockedRange::UniqueLocal)),
            ("[fd00:ec2::254]", Some(BlockedRange::CloudMetadata)),
            ("[ff02::1]", Some(BlockedRange::Multicast)),
            ("[64:ff9b::7f00:1]", Some(BlockedRange::Loopback)),
            ("[2606:4700::1111]", None),
            ("[2002:7f00:1::1]", Some(BlockedRange::Loopback)),
            ("[2002:a9fe:a9fe::]", Some(BlockedRange::CloudMetadata)),
            ("[64:ff9b:1::5]", Some(BlockedRange::Reserved)),
            // SIIT (::ffff:0:0/96) carries an IPv4 address too (issue 13 §3).
            ("[::ffff:0:7f00:1]", Some(BlockedRange::Loopback)),
            ("[::ffff:0:a9fe:a9fe]", Some(BlockedRange::CloudMetadata)),
            ("[::ffff:0:10.0.0.1]", Some(BlockedRange::Private)),
            ("[::ffff:0:0:0]", Some(BlockedRange::Unspecified)),
        ];
        for (s, want) in cases {
            let ip = parse_ip_literal(s).unwrap_or_else(|| panic!("{s} parses"));
            assert_eq!(blocked_range(ip), want, "{s}");
        }
    }
}
