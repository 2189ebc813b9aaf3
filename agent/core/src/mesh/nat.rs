//! The routing mesh's kernel data path, as data: which published TCP ports the kernel can
//! forward (destination NAT, spread in turn by `numgen`), and the nftables script that says so.
//!
//! ```text
//!  mesh bind address ─► nat_match ─► which destination addresses a rule matches (loopback only)
//!  backends ─► nat_target each ─► all loopback IPv4: a NatRule │ any other: the port stays
//!                                                              │ with the userspace forwarder
//!  rules ─► nat_script(table) ─► `nft -f -` (one transaction: the table's rules replaced)
//! ```
//!
//! The scope is connections made on this machine to a loopback address: the kernel rewrites
//! their destination in the `output` hook (conntrack keeps every open connection on the task it
//! started with, and a rule that no longer names a task sends it nothing new). A connection from
//! another machine, or to a task on another node, needs forwarding and source NAT, which this
//! path does not set up: such ports keep the userspace forwarder.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

/// The destination addresses a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NatMatch {
    /// One loopback address (the mesh listens there).
    Addr(Ipv4Addr),
    /// Any loopback address (the mesh listens on every address).
    Loopback,
}

/// One published TCP port that the kernel forwards, spread in turn over `targets`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NatRule {
    /// The destination addresses matched.
    pub daddr: NatMatch,
    /// The published port.
    pub port: u16,
    /// The tasks' addresses, in the order new connections take them.
    pub targets: Vec<SocketAddrV4>,
}

/// What a mesh listening on `bind` can forward in the kernel: a loopback IPv4 address
/// matches itself, the unspecified address matches the loopback range; anything else has no
/// kernel path.
pub fn nat_match(bind: IpAddr) -> Option<NatMatch> {
    match bind {
        IpAddr::V4(a) if a.is_loopback() => Some(NatMatch::Addr(a)),
        IpAddr::V4(a) if a.is_unspecified() => Some(NatMatch::Loopback),
        _ => None,
    }
}

/// A backend as the kernel path can reach it: a loopback IPv4 address (or `localhost`);
/// `None` for any other host, which keeps its port in user space.
pub fn nat_target(host: &str, port: u16) -> Option<SocketAddrV4> {
    let ip = if host == "localhost" { Ipv4Addr::LOCALHOST } else { host.parse().ok()? };
    ip.is_loopback().then_some(SocketAddrV4::new(ip, port))
}

/// The kernel's rule for a port with these backends: `None` when there is no backend (the
/// listener answers by closing) or one that only user space reaches.
pub fn nat_rule<'a>(
    daddr: NatMatch,
    port: u16,
    backends: impl IntoIterator<Item = (&'a str, u16)>,
) -> Option<NatRule> {
    let targets: Option<Vec<SocketAddrV4>> =
        backends.into_iter().map(|(host, p)| nat_target(host, p)).collect();
    let targets = targets?;
    (!targets.is_empty()).then_some(NatRule { daddr, port, targets })
}

/// The nftables script that makes `table` hold exactly `rules`, in one transaction: the
/// table is made if missing, emptied, and filled again.
pub fn nat_script(table: &str, rules: &[NatRule]) -> String {
    let chain = "chain output { type nat hook output priority -100; policy accept; }";
    let mut s = format!("table ip {table} {{\n  {chain}\n}}\nflush table ip {table}\n");
    for r in rules {
        let daddr = match r.daddr {
            NatMatch::Addr(a) => format!("ip daddr {a}"),
            NatMatch::Loopback => "ip daddr 127.0.0.0/8".to_owned(),
        };
        let to = match r.targets.as_slice() {
            [one] => format!("{}:{}", one.ip(), one.port()),
            many => {
                let map: Vec<String> = many
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("{i} : {} . {}", t.ip(), t.port()))
                    .collect();
                format!("numgen inc mod {} map {{ {} }}", many.len(), map.join(", "))
            }
        };
        let port = r.port;
        s.push_str(&format!(
            "add rule ip {table} output {daddr} tcp dport {port} dnat ip to {to}\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_unspecified_binds_have_a_kernel_path() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(nat_match(a("127.0.0.2")), Some(NatMatch::Addr(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(nat_match(a("0.0.0.0")), Some(NatMatch::Loopback));
        assert_eq!(nat_match(a("10.0.0.1")), None);
        assert_eq!(nat_match(a("::1")), None);
    }

    #[test]
    fn a_port_with_a_backend_off_loopback_stays_in_user_space() {
        let lo = NatMatch::Loopback;
        assert_eq!(nat_rule(lo, 80, [("127.0.0.3", 4001), ("10.1.2.3", 4002)]), None);
        assert_eq!(nat_rule(lo, 80, [("web.internal", 4001)]), None);
        assert_eq!(nat_rule(lo, 80, []), None, "no backend: the listener closes");
        let r = nat_rule(lo, 80, [("localhost", 4001), ("127.0.0.3", 4002)]).unwrap();
        let want =
            [SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4001), "127.0.0.3:4002".parse().unwrap()];
        assert_eq!(r.targets, want);
    }

    #[test]
    fn the_script_replaces_the_tables_rules_in_one_go() {
        let rules = [
            NatRule {
                daddr: NatMatch::Addr(Ipv4Addr::new(127, 0, 0, 2)),
                port: 30001,
                targets: vec![
                    "127.0.0.3:40001".parse().unwrap(),
                    "127.0.0.3:40002".parse().unwrap(),
                ],
            },
            NatRule {
                daddr: NatMatch::Loopback,
                port: 30002,
                targets: vec!["127.0.0.1:40003".parse().unwrap()],
            },
        ];
        let chain = "chain output { type nat hook output priority -100; policy accept; }";
        let want = format!(
            "table ip t {{\n  {chain}\n}}\nflush table ip t\n\
             add rule ip t output ip daddr 127.0.0.2 tcp dport 30001 dnat ip to numgen inc mod 2 \
             map {{ 0 : 127.0.0.3 . 40001, 1 : 127.0.0.3 . 40002 }}\n\
             add rule ip t output ip daddr 127.0.0.0/8 tcp dport 30002 dnat ip to 127.0.0.1:40003\n"
        );
        assert_eq!(nat_script("t", &rules), want);
        let empty = format!("table ip t {{\n  {chain}\n}}\nflush table ip t\n");
        assert_eq!(nat_script("t", &[]), empty);
    }
}
