//! The stream's UDP socket on one tunnel ([`crate::probe`]): bound to the
//! interface and `[cost] probe_port`, with kernel receive timestamps
//! (SO_TIMESTAMPNS: CLOCK_REALTIME at the kernel's receive, read from
//! recvmsg's control messages), so daemon load never looks like latency.
//! The transmit time is read from the same clock just before the send.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::io::unix::AsyncFd;

pub struct StreamSocket {
    fd: AsyncFd<Socket>,
    peer: SocketAddrV6,
}

/// One datagram: its payload, source and kernel receive time (ns, CLOCK_REALTIME).
pub struct Datagram {
    pub len: usize,
    pub from: SocketAddrV6,
    pub rx_ns: u64,
    /// The kernel gave no timestamp: `rx_ns` was read after the fact.
    pub late_stamp: bool,
}

/// CLOCK_REALTIME in ns, the clock of the kernel's SO_TIMESTAMPNS stamps.
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

impl StreamSocket {
    /// `[::]:port` on `interface` only, sending to `peer` (link-local) on the same port.
    pub fn new(interface: &str, peer: Ipv6Addr, port: u16) -> io::Result<StreamSocket> {
        let scope = super::transport::if_index(interface)?;
        let socket = Socket::new(Domain::IPV6, Type::DGRAM.nonblocking(), Some(Protocol::UDP))?;
        socket.set_only_v6(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_unicast_hops_v6(255)?;
        set_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        socket.bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            port,
            0,
            0,
        )))?;
        // SAFETY: the Socket owns its descriptor until the AsyncFd (its owner) is dropped.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
        Ok(StreamSocket {
            fd,
            peer: SocketAddrV6::new(peer, port, 0, scope),
        })
    }

    pub fn send(&self, payload: &[u8]) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(payload, &SockAddr::from(self.peer))
            .map(|_| ())
    }

    /// The next datagram into `buf`, from anyone (the caller checks the source).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| recvmsg(s.get_ref().as_raw_fd(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

/// setsockopt(2) of an int option (the stream and BFD sockets).
pub(super) fn set_int(
    s: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: v lives for the call; the size is that of a c_int.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// recvmsg(2) of one datagram: its length as `flags` make recvmsg report it,
/// its source, and each control message as (level, type, data) to `on_cmsg`
/// (the stream's receive timestamp, BFD's hop limit).
pub(super) fn recvmsg_with(
    fd: libc::c_int,
    buf: &mut [u8],
    flags: libc::c_int,
    mut on_cmsg: impl FnMut(libc::c_int, libc::c_int, &[u8]),
) -> io::Result<(usize, SocketAddrV6)> {
    // SAFETY: all-zero is a valid sockaddr_in6 / msghdr.
    let mut name: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: aligned for cmsghdr; room for a timespec message and then some.
    let mut control = [0u64; 16];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in msg is valid for the call, with the lengths given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within
    // msg_controllen; each message's data is cmsg_len less its header.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let data = std::slice::from_raw_parts(libc::CMSG_DATA(c), len);
            on_cmsg((*c).cmsg_level, (*c).cmsg_type, data);
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let from = SocketAddrV6::new(
        Ipv6Addr::from(name.sin6_addr.s6_addr),
        u16::from_be(name.sin6_port),
        0,
        name.sin6_scope_id,
    );
    Ok((n as usize, from))
}

/// One datagram with its SCM_TIMESTAMPNS receive time.
pub(super) fn recvmsg(fd: libc::c_int, buf: &mut [u8]) -> io::Result<Datagram> {
    let mut rx_ns = None;
    // MSG_TRUNC: the datagram's real length, so an oversized one fails the length check.
    let (len, from) = recvmsg_with(fd, buf, libc::MSG_TRUNC, |level, kind, data| {
        if level == libc::SOL_SOCKET
            && kind == libc::SCM_TIMESTAMPNS
            && data.len() >= std::mem::size_of::<libc::timespec>()
        {
            // SAFETY: data holds a timespec (length checked); read unaligned.
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
            rx_ns = Some(
                (ts.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(ts.tv_nsec as u64),
            );
        }
    })?;
    Ok(Datagram {
        len,
        from,
        rx_ns: rx_ns.unwrap_or_else(realtime_ns),
        late_stamp: rx_ns.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sockets on `lo` (root: SO_BINDTODEVICE): a datagram arrives with a
    /// kernel timestamp between the send and the read.
    #[tokio::test]
    async fn kernel_timestamp_over_loopback() {
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let a = StreamSocket::new("lo", Ipv6Addr::LOCALHOST, 17901).unwrap();
        let before = realtime_ns();
        a.send(b"hello").unwrap();
        let mut buf = [0u8; 100];
        let d = tokio::time::timeout(std::time::Duration::from_secs(2), a.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let after = realtime_ns();
        assert_eq!(&buf[..d.len], b"hello");
        assert_eq!(*d.from.ip(), Ipv6Addr::LOCALHOST);
        assert!(!d.late_stamp);
        assert!(before <= d.rx_ns && d.rx_ns <= after);
    }
}
