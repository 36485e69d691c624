//! TCP sockets for BGP: link-local IPv6 with the scope taken from the interface
//! name, one listener for every neighbor, GTSM (RFC 5082) on direct sessions;
//! multihop sessions from our loopback (`source`) with hop limit `multihop`.

use crate::config::Neighbor;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Interface index of a name, or an error naming the interface.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: c is a valid NUL-terminated string; the call only reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}"),
        ))
    } else {
        Ok(index)
    }
}

/// Interface name of an index (for logging and matching inbound link-local peers).
pub fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The socket address of a neighbor, with the scope of its interface for link-local.
pub fn neighbor_addr(n: &Neighbor) -> io::Result<SocketAddr> {
    Ok(match n.address {
        IpAddr::V6(a) if a.is_unicast_link_local() => {
            let ifname = n.interface.as_deref().unwrap_or_default();
            SocketAddr::V6(SocketAddrV6::new(a, n.port, 0, if_index(ifname)?))
        }
        a => SocketAddr::new(a, n.port),
    })
}

/// RFC 5082: send with TTL / hop limit 255 and accept only 255 (direct sessions).
fn set_gtsm(socket: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        socket.set_unicast_hops_v6(255)?;
        setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, 255)
    } else {
        socket.set_ttl(255)?;
        setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_MINTTL, 255)
    }
}

fn setsockopt_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: value lives for the call; the length matches its type.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Socket options every BGP connection gets.
fn prepare(socket: &Socket) -> io::Result<()> {
    socket.set_nodelay(true)?;
    socket.set_keepalive(false)?;
    Ok(())
}

/// Multihop: IP TTL / IPv6 hop limit of what we send (no minimum on receipt).
fn set_hop_limit(socket: &Socket, v6: bool, hops: u8) -> io::Result<()> {
    if v6 {
        socket.set_unicast_hops_v6(hops.into())
    } else {
        socket.set_ttl(hops.into())
    }
}

/// Apply per-neighbor options to an accepted connection.
pub fn prepare_accepted(stream: &TcpStream, n: &Neighbor) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    socket.set_nodelay(true)?;
    // An IPv4 peer on the dual-stack listener comes on an IPv6 socket with
    // v4-mapped addresses: its packets are IPv4, so the IPv4 options apply.
    let v6 = stream.local_addr()?.is_ipv6() && n.address.is_ipv6();
    if n.ttl_security {
        set_gtsm(&socket, v6)?;
    }
    if let Some(hops) = n.multihop {
        set_hop_limit(&socket, v6, hops)?;
    }
    Ok(())
}

/// Connect to a neighbor: from its interface (link-local scope), or, multihop,
/// from our `source` address with its hop limit; to its port.
pub async fn connect(n: &Neighbor, timeout: Duration) -> io::Result<TcpStream> {
    let addr = neighbor_addr(n)?;
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    prepare(&socket)?;
    if n.ttl_security {
        set_gtsm(&socket, addr.is_ipv6())?;
    }
    if let Some(ifname) = &n.interface {
        // Leave by the tunnel the neighbor is configured on, whatever the routing table says.
        socket.bind_device(Some(ifname.as_bytes()))?;
    }
    if let Some(hops) = n.multihop {
        // Whatever path the underlay's routes give, from our loopback (the
        // address the neighbor expects the session from).
        set_hop_limit(&socket, addr.is_ipv6(), hops)?;
        if let Some(source) = n.source {
            socket
                .bind(&SockAddr::from(SocketAddr::new(source, 0)))
                .map_err(|e| io::Error::new(e.kind(), format!("bind to source {source}: {e}")))?;
        }
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = socket.into();
    let stream = TcpStream::from_std(std_stream)?;
    tokio::time::timeout(timeout, stream.writable())
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out"),
            )
        })??;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    stream.peer_addr()?;
    Ok(stream)
}

/// GTSM on the listener itself (so even the handshake needs hop limit 255), or
/// not: on when every neighbor is direct with `ttl_security` (see [`listen`]).
pub fn set_listener_gtsm(listener: &TcpListener, on: bool) -> io::Result<()> {
    let socket = socket2::SockRef::from(listener);
    let min = if on { 255 } else { 0 };
    setsockopt_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min)?;
    setsockopt_int(&socket, libc::IPPROTO_IP, libc::IP_MINTTL, min)
}

/// Whether the listener can demand hop limit 255 of every handshake.
pub fn listener_gtsm(neighbors: &[Neighbor]) -> bool {
    !neighbors.is_empty() && neighbors.iter().all(|n| n.ttl_security)
}

/// The one listening socket: `[::]:port`, dual stack, shared by every neighbor.
/// With `gtsm` (every neighbor is direct with ttl_security) even the handshake
/// must arrive with hop limit 255; otherwise GTSM starts on the accepted socket.
pub fn listen(port: u16, gtsm: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::IPV6,
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_only_v6(false)?;
    if gtsm {
        setsockopt_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, 255)?;
        setsockopt_int(&socket, libc::IPPROTO_IP, libc::IP_MINTTL, 255)?;
    }
    socket.set_reuse_address(true)?;
    prepare(&socket)?;
    socket.bind(&SockAddr::from(SocketAddr::new(
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        port,
    )))?;
    socket.listen(64)?;
    let std_listener: std::net::TcpListener = socket.into();
    TcpListener::from_std(std_listener)
}

/// Address and interface an inbound connection came from, IPv4-mapped addresses unmapped.
pub fn remote_of(addr: SocketAddr) -> (IpAddr, Option<String>) {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), None),
            None if a.ip().is_unicast_link_local() => (IpAddr::V6(*a.ip()), if_name(a.scope_id())),
            None => (IpAddr::V6(*a.ip()), None),
        },
        SocketAddr::V4(a) => (IpAddr::V4(*a.ip()), None),
    }
}

/// Which configured neighbor an inbound connection (from `remote`, to our
/// `local`) belongs to: same address and, for link-local, the same interface;
/// a multihop neighbor must also connect to its configured `source` (our
/// loopback): a session to another of our addresses would not follow the
/// loopback's route and is not what the neighbor's configuration says.
/// Anything else is refused, with the reason.
pub fn match_neighbor(
    neighbors: &[Neighbor],
    remote: SocketAddr,
    local: SocketAddr,
) -> Result<usize, String> {
    let (ip, ifname) = remote_of(remote);
    let found = neighbors.iter().position(|n| {
        n.address == ip
            && (!matches!(ip, IpAddr::V6(a) if a.is_unicast_link_local()) || n.interface == ifname)
    });
    let Some(i) = found else {
        let on = ifname.as_deref().unwrap_or("-");
        return Err(format!(
            "{ip} (interface {on}) is not a configured neighbor"
        ));
    };
    let (to, _) = remote_of(local);
    match (neighbors[i].multihop, neighbors[i].source) {
        (Some(_), Some(source)) if source != to => Err(format!(
            "multihop neighbor {ip} connected to {to}, not to its source {source}"
        )),
        _ => Ok(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neighbor(addr: &str, ifname: Option<&str>) -> Neighbor {
        let extra = match ifname {
            Some("multihop") => "multihop = 3\nsource = \"10.0.0.1\"\n".to_string(),
            Some(i) => format!("interface = \"{i}\"\n"),
            None => String::new(),
        };
        let text = format!(
            "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.0.0.0/8\"]\n[[neighbor]]\naddress = \"{addr}\"\n{extra}"
        );
        crate::config::parse(&text, "t")
            .unwrap()
            .neighbors
            .remove(0)
    }

    #[test]
    fn inbound_link_local_matches_only_on_its_interface() {
        let lo = if_index("lo").unwrap();
        let ns = vec![neighbor("fe80::2", Some("lo")), neighbor("192.0.2.7", None)];
        let from = |ip: &str, scope| {
            SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), 40000, 0, scope))
        };
        let to = from("::ffff:192.0.2.1", 0);
        assert_eq!(match_neighbor(&ns, from("fe80::2", lo), to), Ok(0));
        assert!(
            match_neighbor(&ns, from("fe80::2", 0), to).is_err(),
            "wrong interface"
        );
        assert!(
            match_neighbor(&ns, from("fe80::3", lo), to).is_err(),
            "unknown address"
        );
        assert_eq!(
            match_neighbor(&ns, from("::ffff:192.0.2.7", 0), to),
            Ok(1),
            "v4-mapped"
        );
    }

    #[test]
    fn inbound_multihop_must_reach_our_source_address() {
        let ns = vec![
            neighbor("fe80::2", Some("lo")),
            neighbor("10.0.0.3", Some("multihop")),
        ];
        let v4 = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 1790);
        let mapped = |ip: &str| SocketAddr::new(format!("::ffff:{ip}").parse().unwrap(), 1790);
        assert_eq!(match_neighbor(&ns, v4("10.0.0.3"), v4("10.0.0.1")), Ok(1));
        assert_eq!(
            match_neighbor(&ns, mapped("10.0.0.3"), mapped("10.0.0.1")),
            Ok(1),
            "dual-stack listener: both ends v4-mapped"
        );
        let e = match_neighbor(&ns, v4("10.0.0.3"), v4("192.0.2.1")).unwrap_err();
        assert_eq!(
            e,
            "multihop neighbor 10.0.0.3 connected to 192.0.2.1, not to its source 10.0.0.1"
        );
    }

    #[test]
    fn interface_names_resolve_both_ways() {
        let i = if_index("lo").unwrap();
        assert_eq!(if_name(i).as_deref(), Some("lo"));
        assert!(if_index("no-such-if0").is_err());
    }
}
