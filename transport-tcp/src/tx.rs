//! The send ring: PDUs waiting for the socket, allocated once per queue pair.
//!
//! An entry holds its PDU header inline (with header digest and padding) and
//! points at its data where the data lives (the host's caller buffer, the
//! target's slot buffer), so payload is never copied. [`TxRing::send`]
//! gathers as many entries as fit into one `sendmsg` and resumes a partial
//! write on the next call. When an entry has gone out completely, its
//! [`TxDone`] tag is handed back so the owner can release what it referenced.

use std::io::{self, IoSlice};
use std::net::TcpStream;

use protocol::WireError;

use crate::sys;

/// Room for the largest header this crate sends: a termination request with
/// 128 bytes of error data (152), ICReq/ICResp (128), or a capsule padded to
/// the largest CPDA (128).
pub(crate) const TX_HDR_MAX: usize = 160;

/// iovecs per `sendmsg`: up to three per PDU (header, data, data digest).
const MAX_IOV: usize = 64;

/// What an entry's owner must learn when the entry has been fully sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxDone {
    /// Nothing references anything.
    Nothing,
    /// Host: a command capsule of this CID (it may reference the caller's buffer).
    Capsule(u16),
    /// Host: an H2CData PDU of this CID (it references the caller's buffer).
    H2cData(u16),
    /// Target: the response capsule of this slot, the slot's last PDU.
    Response(u16),
}

struct TxEntry {
    hdr: [u8; TX_HDR_MAX],
    hdr_len: u16,
    data: *const u8,
    data_len: u32,
    ddgst: [u8; 4],
    ddgst_len: u8,
    /// Bytes of this entry already written to the socket.
    sent: u32,
    done: TxDone,
}

impl TxEntry {
    const EMPTY: TxEntry = TxEntry {
        hdr: [0; TX_HDR_MAX],
        hdr_len: 0,
        data: core::ptr::null(),
        data_len: 0,
        ddgst: [0; 4],
        ddgst_len: 0,
        sent: 0,
        done: TxDone::Nothing,
    };

    fn total(&self) -> u32 {
        u32::from(self.hdr_len) + self.data_len + u32::from(self.ddgst_len)
    }
}

/// A fixed-capacity FIFO of outgoing PDUs.
pub(crate) struct TxRing {
    entries: Box<[TxEntry]>,
    head: usize,
    len: usize,
}

impl TxRing {
    /// A ring of `capacity` entries, allocated now.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(4);
        TxRing { entries: (0..capacity).map(|_| TxEntry::EMPTY).collect(), head: 0, len: 0 }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a PDU without data. `write_header` encodes into the entry and
    /// returns the header length. Returns false when the ring is full.
    pub(crate) fn push_header(
        &mut self,
        write_header: impl FnOnce(&mut [u8]) -> Result<usize, WireError>,
        done: TxDone,
    ) -> Result<bool, WireError> {
        // SAFETY: no data pointer is stored.
        unsafe { self.push(write_header, core::ptr::null(), 0, None, done) }
    }

    /// Queues a PDU: the header `write_header` encodes, then `data_len` bytes
    /// at `data`, then `ddgst` if given. Returns false when the ring is full.
    ///
    /// # Safety
    /// `data` must be valid for reads of `data_len` bytes, and those bytes must
    /// not be written, until this entry has been reported through
    /// [`TxRing::send`]'s callback or the ring is dropped or cleared.
    pub(crate) unsafe fn push(
        &mut self,
        write_header: impl FnOnce(&mut [u8]) -> Result<usize, WireError>,
        data: *const u8,
        data_len: u32,
        ddgst: Option<u32>,
        done: TxDone,
    ) -> Result<bool, WireError> {
        if self.is_full() {
            return Ok(false);
        }
        let cap = self.entries.len();
        let e = &mut self.entries[(self.head + self.len) % cap];
        let hdr_len = write_header(&mut e.hdr)?;
        e.hdr_len = hdr_len as u16;
        e.data = data;
        e.data_len = if data.is_null() { 0 } else { data_len };
        e.ddgst = ddgst.unwrap_or(0).to_le_bytes();
        e.ddgst_len = if ddgst.is_some() { 4 } else { 0 };
        e.sent = 0;
        e.done = done;
        self.len += 1;
        Ok(true)
    }

    /// Drops every entry that has not started going out, keeping a partly
    /// sent front entry (the stream must finish it before anything else).
    /// Used before a termination request, when nothing else matters.
    pub(crate) fn drop_unstarted(&mut self) {
        if self.len > 0 && self.entries[self.head].sent > 0 {
            self.len = 1;
        } else {
            self.len = 0;
        }
    }

    /// Writes as much as the socket takes now, one `sendmsg` per batch, and
    /// calls `on_sent` for each entry that has gone out completely. Returns
    /// when the ring is empty or the socket is full.
    pub(crate) fn send(&mut self, sock: &TcpStream, mut on_sent: impl FnMut(TxDone)) -> io::Result<()> {
        let cap = self.entries.len();
        while self.len > 0 {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n_iov = 0;
            let mut gathered = 0usize;
            for i in 0..self.len {
                if n_iov + 3 > MAX_IOV {
                    break;
                }
                let e = &self.entries[(self.head + i) % cap];
                let data: &[u8] = if e.data_len == 0 {
                    &[]
                } else {
                    // SAFETY: `push`'s contract keeps `data` valid and unwritten
                    // for `data_len` bytes until this entry is reported sent.
                    unsafe { core::slice::from_raw_parts(e.data, e.data_len as usize) }
                };
                let mut skip = e.sent as usize;
                for part in [&e.hdr[..usize::from(e.hdr_len)], data, &e.ddgst[..usize::from(e.ddgst_len)]] {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    iov[n_iov] = IoSlice::new(&part[skip..]);
                    gathered += part.len() - skip;
                    n_iov += 1;
                    skip = 0;
                }
            }
            let written = match sys::send_vectored(sock, &iov[..n_iov]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance(written, &mut on_sent);
            if written < gathered {
                // The socket buffer is full; another call now would only get EAGAIN.
                return Ok(());
            }
        }
        Ok(())
    }

    fn advance(&mut self, mut written: usize, on_sent: &mut impl FnMut(TxDone)) {
        let cap = self.entries.len();
        while written > 0 && self.len > 0 {
            let e = &mut self.entries[self.head];
            let left = (e.total() - e.sent) as usize;
            if written < left {
                e.sent += written as u32;
                return;
            }
            written -= left;
            let done = e.done;
            e.data = core::ptr::null();
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            on_sent(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn header(bytes: &'static [u8]) -> impl FnOnce(&mut [u8]) -> Result<usize, WireError> {
        move |b: &mut [u8]| {
            b[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        }
    }

    #[test]
    fn sends_headers_data_and_digest_in_order_and_reports_each_entry() {
        let (a, mut b) = pair();
        let mut ring = TxRing::new(8);
        let data = *b"payload";
        assert!(ring.push_header(header(b"H1"), TxDone::Capsule(1)).unwrap());
        // SAFETY: `data` outlives the send below.
        assert!(unsafe { ring.push(header(b"H2"), data.as_ptr(), 7, Some(0x0403_0201), TxDone::H2cData(2)) }.unwrap());
        let mut done = Vec::new();
        ring.send(&a, |d| done.push(d)).unwrap();
        assert!(ring.is_empty());
        assert_eq!(done, vec![TxDone::Capsule(1), TxDone::H2cData(2)]);
        let mut got = [0u8; 15];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"H1H2payload\x01\x02\x03\x04");
    }

    #[test]
    fn reports_full_ring_instead_of_overwriting() {
        let mut ring = TxRing::new(4);
        for _ in 0..4 {
            assert!(ring.push_header(header(b"x"), TxDone::Nothing).unwrap());
        }
        assert!(ring.is_full());
        assert!(!ring.push_header(header(b"y"), TxDone::Nothing).unwrap());
    }

    #[test]
    fn partial_write_resumes_where_it_stopped() {
        let mut ring = TxRing::new(4);
        let big = [7u8; 64];
        // SAFETY: `big` outlives the ring's use of it.
        unsafe { ring.push(header(b"HDR"), big.as_ptr(), 64, None, TxDone::H2cData(0)) }.unwrap();
        let mut done = 0;
        ring.advance(10, &mut |_| done += 1);
        assert_eq!((ring.entries[ring.head].sent, done), (10, 0));
        ring.advance(57, &mut |_| done += 1);
        assert_eq!(done, 1);
        assert!(ring.is_empty());
    }
}
