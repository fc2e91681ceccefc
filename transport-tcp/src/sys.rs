//! The socket calls the standard library does not offer, as safe wrappers:
//! a connect that does not block, a zero-timeout writability check, and a
//! gathering `sendmsg` with `MSG_NOSIGNAL`. All raw FFI of this crate is here.
//!
//! Everything else (recv, TCP_NODELAY, SO_ERROR, listening with
//! SO_REUSEADDR) goes through `std::net`.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Creates a non-blocking TCP socket and starts connecting it to `addr`.
/// Returns at once: the connection completes (or fails) later; see
/// [`poll_writable`] and `TcpStream::take_error`.
pub(crate) fn start_connect(addr: &SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns; OwnedFd closes it on every path.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Before connect, so the window scale of the SYN reflects the buffers.
    set_buffer_sizes(&owned, SOCKET_BUFFER_BYTES)?;
    set_abort_on_close(&owned)?;
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: `sin` is a valid sockaddr_in that outlives the call, and the length passed is its size.
            unsafe {
                libc::connect(
                    fd,
                    (&sin as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
                    core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sin6` is a valid sockaddr_in6 that outlives the call, and the length passed is its size.
            unsafe {
                libc::connect(
                    fd,
                    (&sin6 as *const libc::sockaddr_in6).cast::<libc::sockaddr>(),
                    core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(TcpStream::from(owned))
}

/// Send and receive buffer size of every NVMe/TCP socket, as SPDK's posix
/// sockets use. The kernel's autotuning starts sending at 16 KiB and takes a
/// while to grow; measured on loopback, 128 KiB reads at QD16 go from about
/// 1.8 to 2.9 GB/s with 2 MiB buffers set up front (`corepath-floor --sockbuf-bytes`).
pub(crate) const SOCKET_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// Sets SO_SNDBUF and SO_RCVBUF (the kernel caps them at net.core.[rw]mem_max).
pub(crate) fn set_buffer_sizes(sock: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: a valid descriptor; the option value is a c_int that outlives the call, its size passed.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                core::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// SO_LINGER with a zero timeout: closing sends RST and drops unsent data.
/// The host closes a connection only when it has given the association up;
/// after that nothing it sent may reach the gateway again (no retransmit of a
/// keep-alive that would extend the gateway's timer, see the multipath stale-write rule).
fn set_abort_on_close(sock: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid descriptor; the option value is a linger struct that outlives the call, its size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            core::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when `sock` is writable or has an error pending (a non-blocking
/// connect has finished one way or the other). Never waits.
pub(crate) fn poll_writable(sock: &TcpStream) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: `pfd` is one valid pollfd, matching the count 1; timeout 0 never blocks.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(rc > 0 && pfd.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0)
}

/// Sends the concatenation of `iov` with one `sendmsg`, without blocking and
/// without raising SIGPIPE on a closed connection. Returns the bytes taken.
pub(crate) fn send_vectored(sock: &TcpStream, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain old data; all-zero is a valid empty message.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    // IoSlice is documented to be ABI compatible with iovec on Unix.
    msg.msg_iov = iov.as_ptr().cast_mut().cast::<libc::iovec>();
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: `msg` points at `iov.len()` iovecs that borrow live slices for
    // the duration of the call; sendmsg only reads them.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
