//! The floor: the fastest a request/response loop with NVMe/TCP's bytes per
//! IO can go on this loopback, with nothing else in it.
//!
//! A server thread and a client thread, each pinned and busy-polling a
//! nonblocking TCP socket with TCP_NODELAY. The client keeps `--iodepth`
//! requests of `--request-bytes` (72: a CapsuleCmd PDU) in flight; the server
//! answers each with `--response-bytes` (4096 + 24: a C2HData header and 4 KiB
//! of data, then a CapsuleResp). Whatever corepath does per IO beyond moving
//! these bytes shows up as its distance from this number.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Loopback request/response floor with NVMe/TCP's bytes per IO")]
struct Args {
    /// Address the server listens on.
    #[arg(long, default_value = "127.0.0.2:0")]
    addr: String,
    /// Requests kept in flight.
    #[arg(long, default_value_t = 1)]
    iodepth: usize,
    /// Bytes per request (a CapsuleCmd PDU is 72).
    #[arg(long, default_value_t = 72)]
    request_bytes: usize,
    /// Bytes per response (4 KiB read: 24-byte C2HData header + 4096 + 24-byte CapsuleResp = 4144).
    #[arg(long, default_value_t = 4144)]
    response_bytes: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5)]
    runtime: u64,
    /// Core for the server thread.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core for the client thread.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
    /// SO_SNDBUF/SO_RCVBUF to set on both sockets (0: leave the kernel's autotuning).
    #[arg(long, default_value_t = 0)]
    sockbuf_bytes: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Sets both socket buffer sizes, as a transport would.
fn set_sockbuf(s: &TcpStream, bytes: usize) -> Result<()> {
    use std::os::fd::AsRawFd;
    if bytes == 0 {
        return Ok(());
    }
    let v = bytes as libc::c_int;
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: valid fd; the option value is a c_int that lives across the call.
        let rc =
            unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, opt, (&v as *const libc::c_int).cast(), 4) };
        anyhow::ensure!(rc == 0, "setsockopt: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads what is there into `buf`; returns bytes read (0 when nothing yet).
fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> Result<usize> {
    match s.read(buf) {
        Ok(0) => anyhow::bail!("peer closed"),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Writes all of `buf`, spinning on a full socket.
fn write_all_spin(s: &mut TcpStream, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.addr).with_context(|| format!("bind {}", args.addr))?;
    let addr = listener.local_addr()?;
    let (req, resp, depth) = (args.request_bytes, args.response_bytes, args.iodepth.max(1));
    let server_core = args.server_core;
    let sockbuf = args.sockbuf_bytes;
    let server = std::thread::spawn(move || -> Result<()> {
        core_affinity::set_for_current(core_affinity::CoreId { id: server_core });
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        set_sockbuf(&s, sockbuf)?;
        s.set_nonblocking(true)?;
        // Room to answer a whole queue of requests with one write.
        let responses = vec![0x5Au8; resp * depth];
        let mut inbuf = vec![0u8; 256 * 1024];
        let mut pending = 0usize;
        loop {
            let n = match read_some(&mut s, &mut inbuf) {
                Ok(n) => n,
                Err(_) => return Ok(()),
            };
            pending += n;
            // Answer every whole request received, in one write.
            let whole = (pending / req).min(depth);
            if whole > 0 {
                pending -= whole * req;
                if write_all_spin(&mut s, &responses[..whole * resp]).is_err() {
                    return Ok(());
                }
            }
        }
    });

    core_affinity::set_for_current(core_affinity::CoreId { id: args.client_core });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    set_sockbuf(&c, args.sockbuf_bytes)?;
    c.set_nonblocking(true)?;
    let requests = vec![0xA5u8; req * depth];
    let mut inbuf = vec![0u8; 256 * 1024];
    let mut in_flight = 0usize;
    let mut got = 0usize;
    let mut completed = 0u64;
    let start = Instant::now();
    let run = Duration::from_secs(args.runtime);
    // One request's send time per slot, in FIFO order (responses come back in order).
    let mut sent_at = std::collections::VecDeque::with_capacity(depth);
    let mut lat_sum_ns = 0u128;
    while start.elapsed() < run {
        // Refill the queue with one write, as a transport batches capsules.
        if in_flight < depth {
            let n = depth - in_flight;
            write_all_spin(&mut c, &requests[..n * req])?;
            let now = Instant::now();
            for _ in 0..n {
                sent_at.push_back(now);
            }
            in_flight = depth;
        }
        got += read_some(&mut c, &mut inbuf)?;
        while got >= resp {
            got -= resp;
            in_flight -= 1;
            completed += 1;
            if let Some(t) = sent_at.pop_front() {
                lat_sum_ns += t.elapsed().as_nanos();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(c);
    let _ = server.join();
    let iops = completed as f64 / secs;
    let avg_us = if completed > 0 { lat_sum_ns as f64 / completed as f64 / 1000.0 } else { 0.0 };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"iodepth": depth, "request_bytes": req, "response_bytes": resp,
                "iops": iops, "avg_lat_us": avg_us, "ios": completed, "seconds": secs})
        );
    } else {
        println!("floor iodepth={depth} req={req}B resp={resp}B: {iops:.0} IOPS, avg {avg_us:.1} us ({completed} IOs in {secs:.1} s)");
    }
    Ok(())
}
