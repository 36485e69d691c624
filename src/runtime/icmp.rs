//! ICMPv6 echo (RFC 4443 §4.1, §4.2) over one tunnel: a raw socket bound to the
//! interface, so the neighbor needs nothing but an IPv6 stack (BIRD nodes too).
//! The kernel fills in the ICMPv6 checksum for raw ICMPv6 sockets (RFC 3542 §3.1).
//! The request's payload is its transmit time (CLOCK_REALTIME ns), echoed back
//! (RFC 4443 §4.2); the reply's kernel receive stamp (SO_TIMESTAMPNS) minus it
//! is the RTT, so daemon load never looks like latency here either.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use tokio::io::unix::AsyncFd;

const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;

pub struct Pinger {
    fd: AsyncFd<Socket>,
    target: SocketAddrV6,
    ident: u16,
}

/// An echo reply: its sequence number and RTT from kernel time stamps
/// (`None`: the payload was not a time of ours).
pub struct Reply {
    pub seq: u16,
    pub rtt: Option<std::time::Duration>,
}

impl Pinger {
    /// A pinger for `target` (link-local) on `interface`; `ident` tells our replies from other pingers'.
    pub fn new(interface: &str, target: Ipv6Addr, ident: u16) -> io::Result<Pinger> {
        let scope = super::transport::if_index(interface)?;
        let socket = Socket::new(
            Domain::IPV6,
            Type::RAW.nonblocking(),
            Some(Protocol::ICMPV6),
        )?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_unicast_hops_v6(255)?;
        set_echo_reply_filter(&socket)?;
        super::stream_socket::set_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        // SAFETY: the Socket owns its descriptor, which stays open and the same
        // until the AsyncFd (which owns the Socket) is dropped.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
        Ok(Pinger {
            fd,
            target: SocketAddrV6::new(target, 0, 0, scope),
            ident,
        })
    }

    /// Send echo request `seq` (8-byte header plus 8 bytes of payload: the time now).
    pub fn send(&self, seq: u16) -> io::Result<()> {
        let mut pkt = [0u8; 16];
        pkt[0] = ECHO_REQUEST;
        pkt[4..6].copy_from_slice(&self.ident.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..16].copy_from_slice(&super::stream_socket::realtime_ns().to_be_bytes());
        self.fd
            .get_ref()
            .send_to(&pkt, &SockAddr::from(self.target))
            .map(|_| ())
    }

    /// The next echo reply of ours from the target.
    pub async fn recv(&self) -> io::Result<Reply> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 1500];
        loop {
            let mut guard = self.fd.readable().await?;
            let d = match guard
                .try_io(|s| super::stream_socket::recvmsg(s.get_ref().as_raw_fd(), &mut buf))
            {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            if d.from.ip() != self.target.ip() {
                continue;
            }
            let data = &buf[..d.len.min(buf.len())];
            if let Some(seq) = parse_reply(data, self.ident) {
                let rtt = data
                    .get(8..16)
                    .and_then(|b| d.rx_ns.checked_sub(u64::from_be_bytes(b.try_into().ok()?)))
                    .filter(|ns| *ns < 60_000_000_000)
                    .map(std::time::Duration::from_nanos);
                return Ok(Reply { seq, rtt });
            }
        }
    }
}

/// Our echo reply: type 129, our identifier; returns its sequence number.
fn parse_reply(data: &[u8], ident: u16) -> Option<u16> {
    if data.len() < 8 || data[0] != ECHO_REPLY || data[4..6] != ident.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([data[6], data[7]]))
}

/// ICMP6_FILTER (RFC 3542 §3.2): pass only echo replies to this socket.
fn set_echo_reply_filter(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // A set bit blocks that type; block all, then let type 129 through.
    let mut filter = [u32::MAX; 8];
    filter[usize::from(ECHO_REPLY) >> 5] &= !(1u32 << (ECHO_REPLY & 31));
    const ICMP6_FILTER: libc::c_int = 1;
    // SAFETY: filter lives for the call; its size is that of struct icmp6_filter.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_replies_count() {
        let mut r = [0u8; 16];
        r[0] = ECHO_REPLY;
        r[4..6].copy_from_slice(&7u16.to_be_bytes());
        r[6..8].copy_from_slice(&42u16.to_be_bytes());
        assert_eq!(parse_reply(&r, 7), Some(42));
        assert_eq!(parse_reply(&r, 8), None, "another pinger's identifier");
        r[0] = ECHO_REQUEST;
        assert_eq!(parse_reply(&r, 7), None, "a request is not a reply");
        assert_eq!(parse_reply(&r[..6], 7), None, "truncated");
    }

    /// Needs root (raw socket): echo to ::1 on lo answers.
    #[tokio::test]
    async fn echo_over_loopback() {
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let p = Pinger::new("lo", Ipv6Addr::LOCALHOST, 0x4b42).unwrap();
        p.send(1).unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), p.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.seq, 1);
        assert!(
            r.rtt.is_some_and(|d| d < std::time::Duration::from_secs(1)),
            "kernel-time RTT"
        );
    }
}
