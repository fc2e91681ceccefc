//! The receive side of a connection: one preallocated buffer that `recv`
//! fills, and a framer that cuts PDUs out of the byte stream without ever
//! needing a whole PDU in the buffer.
//!
//! The framer reads a header (with digest and padding), validates it with
//! [`protocol::tcp::pdu_layout`], and hands it to the owner as
//! [`RxEvent::Header`]; the owner says where the data goes
//! ([`RxStream::set_sink`]); the data is copied there as it arrives (or, when
//! the buffer is empty and much data is still due, received straight into the
//! destination); the data digest is checked; then [`RxEvent::PduDone`].

use core::ptr::NonNull;
use std::io::{self, Read};
use std::net::TcpStream;

use protocol::tcp::{self, CommonHeader, Negotiated, PduLayout, Role, DIGEST_LEN, MAX_HEADER_BYTES};
use protocol::WireError;

/// Size of the receive buffer of one connection.
pub(crate) const RX_BUF_BYTES: usize = 256 * 1024;

/// Below this much outstanding data, receive through the buffer (it may hold
/// the next PDUs too); at or above it, straight into the destination.
const DIRECT_RECV_MIN: usize = 16 * 1024;

/// Where the data of the current PDU goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sink {
    /// Read and drop it (termination request error data, rejected capsules).
    Discard,
    /// Copy it to `len` bytes at `ptr`.
    Mem {
        /// Destination.
        ptr: NonNull<u8>,
        /// Must equal the PDU's data length.
        len: usize,
    },
}

/// What the framer has for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RxEvent {
    /// The buffer holds no more complete step: receive more.
    NeedMore,
    /// A PDU header was read and checked (header digest included); its bytes
    /// are in [`RxStream::header`]. Call [`RxStream::set_sink`] next.
    Header(PduLayout),
    /// The PDU is complete. `data_digest_ok` is false when its data digest
    /// did not match (the data has landed regardless).
    PduDone {
        /// The data digest matched, or there was none.
        data_digest_ok: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum RxState {
    /// Waiting for a PDU header.
    Header,
    /// Header handed out; waiting for [`RxStream::set_sink`].
    AwaitSink,
    /// Moving data to the sink.
    Data { sink: Sink, done: usize, crc: u32 },
    /// Waiting for the data digest.
    Digest { crc: u32 },
}

/// A connection's receive buffer and PDU framer.
pub(crate) struct RxStream {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    state: RxState,
    layout: Option<PduLayout>,
    /// The current PDU's header, for handlers and for termination requests.
    hdr: [u8; MAX_HEADER_BYTES],
    hdr_len: usize,
}

impl RxStream {
    pub(crate) fn new() -> Self {
        RxStream {
            buf: vec![0u8; RX_BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            state: RxState::Header,
            layout: None,
            hdr: [0; MAX_HEADER_BYTES],
            hdr_len: 0,
        }
    }

    /// The current PDU's header bytes (up to its data offset).
    pub(crate) fn header(&self) -> &[u8] {
        &self.hdr[..self.hdr_len]
    }

    /// The layout of the PDU being processed (after [`RxEvent::Header`]).
    pub(crate) fn layout(&self) -> Option<PduLayout> {
        self.layout
    }

    /// The header of the PDU being processed, as a termination request
    /// quotes it (at most 128 bytes).
    pub(crate) fn offending_header(&self) -> &[u8] {
        let layout_hlen = self.layout.map_or(self.hdr_len, |l| l.hlen);
        &self.hdr[..self.hdr_len.min(layout_hlen).min(tcp::TERM_REQ_MAX_DATA)]
    }

    /// Bytes buffered but not yet consumed.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Says where the current PDU's data goes. Must follow [`RxEvent::Header`].
    ///
    /// # Safety
    /// For [`Sink::Mem`], `ptr` must be valid for writes of `len` bytes and not
    /// accessed by anyone else until [`RxEvent::PduDone`] for this PDU, or
    /// until this stream is dropped.
    pub(crate) unsafe fn set_sink(&mut self, sink: Sink) {
        debug_assert!(matches!(self.state, RxState::AwaitSink));
        let data_len = self.layout.map_or(0, |l| l.data_len);
        let sink = match sink {
            Sink::Mem { len, .. } if len != data_len => Sink::Discard,
            s => s,
        };
        self.state = RxState::Data { sink, done: 0, crc: 0 };
    }

    /// Takes the next step on buffered bytes.
    pub(crate) fn next(&mut self, neg: &Negotiated, receiver: Role) -> Result<RxEvent, WireError> {
        loop {
            match self.state {
                RxState::Header => return self.next_header(neg, receiver),
                RxState::AwaitSink => {
                    // The owner did not pick a sink: drop the data rather than stall.
                    self.state = RxState::Data { sink: Sink::Discard, done: 0, crc: 0 };
                }
                RxState::Data { sink, done, crc } => {
                    let Some(layout) = self.layout else {
                        self.state = RxState::Header;
                        continue;
                    };
                    if done == layout.data_len {
                        if layout.has_ddgst {
                            self.state = RxState::Digest { crc };
                            continue;
                        }
                        return Ok(self.finish(true));
                    }
                    let avail = self.end - self.start;
                    if avail == 0 {
                        return Ok(RxEvent::NeedMore);
                    }
                    let take = avail.min(layout.data_len - done);
                    let src = &self.buf[self.start..self.start + take];
                    let crc = if layout.has_ddgst { tcp::data_digest_append(crc, src) } else { crc };
                    if let Sink::Mem { ptr, .. } = sink {
                        // SAFETY: `set_sink`'s contract makes `ptr` valid for
                        // `data_len` bytes; `done + take <= data_len`; the
                        // source is this stream's own buffer, so they cannot overlap.
                        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr().add(done), take) };
                    }
                    self.start += take;
                    self.state = RxState::Data { sink, done: done + take, crc };
                }
                RxState::Digest { crc } => {
                    if self.end - self.start < DIGEST_LEN {
                        return Ok(RxEvent::NeedMore);
                    }
                    let b = &self.buf[self.start..self.start + DIGEST_LEN];
                    let got = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.start += DIGEST_LEN;
                    return Ok(self.finish(got == crc));
                }
            }
        }
    }

    fn finish(&mut self, data_digest_ok: bool) -> RxEvent {
        self.state = RxState::Header;
        RxEvent::PduDone { data_digest_ok }
    }

    fn next_header(&mut self, neg: &Negotiated, receiver: Role) -> Result<RxEvent, WireError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < CommonHeader::SIZE {
            return Ok(RxEvent::NeedMore);
        }
        let keep_for_error = |s: &mut Self| {
            let n = (s.end - s.start).min(tcp::TERM_REQ_MAX_DATA);
            s.hdr[..n].copy_from_slice(&s.buf[s.start..s.start + n]);
            s.hdr_len = n;
            s.layout = None;
        };
        let ch = CommonHeader::parse(avail)?;
        let layout = match tcp::pdu_layout(&ch, neg, receiver) {
            Ok(l) => l,
            Err(e) => {
                keep_for_error(self);
                return Err(e);
            }
        };
        let head_len = layout.data_offset.min(layout.plen);
        if avail.len() < head_len {
            return Ok(RxEvent::NeedMore);
        }
        if let Err(e) = tcp::verify_header_digest(&avail[..head_len], &layout) {
            keep_for_error(self);
            return Err(e);
        }
        self.hdr[..head_len].copy_from_slice(&avail[..head_len]);
        self.hdr_len = head_len;
        self.layout = Some(layout);
        self.start += head_len;
        self.state = RxState::AwaitSink;
        Ok(RxEvent::Header(layout))
    }

    /// One `recv` from `sock`. Returns the bytes received (0: the peer closed).
    /// Receives straight into the current data sink when the buffer is empty
    /// and at least [`DIRECT_RECV_MIN`] bytes of data are still due.
    pub(crate) fn fill(&mut self, mut sock: &TcpStream) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if let (RxState::Data { sink: Sink::Mem { ptr, .. }, done, crc }, Some(layout)) = (self.state, self.layout)
            {
                let due = layout.data_len - done;
                if due >= DIRECT_RECV_MIN {
                    // SAFETY: `set_sink`'s contract makes `ptr` valid for
                    // `data_len` bytes and exclusively ours until PduDone;
                    // `done + due == data_len`.
                    let dst = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr().add(done), due) };
                    let n = sock.read(dst)?;
                    let crc = if layout.has_ddgst { tcp::data_digest_append(crc, &dst[..n]) } else { crc };
                    if let RxState::Data { sink, .. } = self.state {
                        self.state = RxState::Data { sink, done: done + n, crc };
                    }
                    return Ok(n);
                }
            }
        } else if self.buf.len() - self.end < MAX_HEADER_BYTES {
            // Too little room left for a header: move the tail to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = sock.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Puts bytes in the buffer as if received (tests of the framer).
    #[cfg(test)]
    pub(crate) fn inject(&mut self, bytes: &[u8]) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::tcp::{flags, CapsuleResp, DataPduHeader, PduType};
    use protocol::{Cqe, Status};

    fn neg(d: bool) -> Negotiated {
        Negotiated { hdgst: d, ddgst: d, max_data_pdu_bytes: 1 << 20, max_in_capsule_bytes: 0, rx_pda: 0, tx_pda: 0 }
    }

    fn c2h(data: &[u8], n: &Negotiated) -> Vec<u8> {
        let h = DataPduHeader::new(PduType::C2HData, 1, 0, 0, data.len() as u32, flags::LAST_PDU, n);
        let mut out = vec![0u8; 64];
        let off = h.encode(&mut out).unwrap();
        out.truncate(off);
        out.extend_from_slice(data);
        if n.ddgst {
            out.extend_from_slice(&tcp::data_digest(data).to_le_bytes());
        }
        out
    }

    #[test]
    fn frames_a_data_pdu_fed_one_byte_at_a_time() {
        for digests in [false, true] {
            let n = neg(digests);
            let data: Vec<u8> = (0..100u8).collect();
            let pdu = c2h(&data, &n);
            let mut rx = RxStream::new();
            let mut dst = vec![0u8; 100];
            let mut events = Vec::new();
            for b in &pdu {
                rx.inject(core::slice::from_ref(b));
                loop {
                    match rx.next(&n, Role::Host).unwrap() {
                        RxEvent::NeedMore => break,
                        RxEvent::Header(l) => {
                            assert_eq!(l.data_len, 100);
                            // SAFETY: `dst` outlives the stream's use of it.
                            unsafe {
                                rx.set_sink(Sink::Mem { ptr: NonNull::new(dst.as_mut_ptr()).unwrap(), len: 100 })
                            };
                            events.push("header");
                        }
                        RxEvent::PduDone { data_digest_ok } => {
                            assert!(data_digest_ok);
                            events.push("done");
                        }
                    }
                }
            }
            assert_eq!(events, ["header", "done"]);
            assert_eq!(dst, data);
            assert_eq!(rx.buffered(), 0);
        }
    }

    #[test]
    fn reports_a_bad_data_digest_without_failing() {
        let n = neg(true);
        let mut pdu = c2h(&[1, 2, 3, 4], &n);
        let last = pdu.len() - 1;
        pdu[last] ^= 0xFF;
        let mut rx = RxStream::new();
        rx.inject(&pdu);
        assert!(matches!(rx.next(&n, Role::Host).unwrap(), RxEvent::Header(_)));
        // SAFETY: Discard stores nothing.
        unsafe { rx.set_sink(Sink::Discard) };
        assert_eq!(rx.next(&n, Role::Host).unwrap(), RxEvent::PduDone { data_digest_ok: false });
    }

    #[test]
    fn rejects_a_corrupt_header_digest_and_keeps_the_header_for_the_term_req() {
        let n = neg(true);
        let mut b = [0u8; 28];
        CapsuleResp::new(Cqe::new(3, Status::SUCCESS, 0), &n).encode(&mut b).unwrap();
        b[20] ^= 1;
        let mut rx = RxStream::new();
        rx.inject(&b);
        assert!(matches!(rx.next(&n, Role::Host), Err(WireError::DigestMismatch { .. })));
        assert_eq!(rx.offending_header(), &b[..]);
    }

    #[test]
    fn two_pdus_in_one_buffer_come_out_one_after_the_other() {
        let n = neg(false);
        let mut bytes = Vec::new();
        for cid in [1u16, 2] {
            let mut b = [0u8; 24];
            CapsuleResp::new(Cqe::new(cid, Status::SUCCESS, 0), &n).encode(&mut b).unwrap();
            bytes.extend_from_slice(&b);
        }
        let mut rx = RxStream::new();
        rx.inject(&bytes);
        for cid in [1u16, 2] {
            assert!(matches!(rx.next(&n, Role::Host).unwrap(), RxEvent::Header(_)));
            assert_eq!(CapsuleResp::parse(rx.header()).unwrap().cqe.cid, cid);
            // SAFETY: Discard stores nothing.
            unsafe { rx.set_sink(Sink::Discard) };
            assert_eq!(rx.next(&n, Role::Host).unwrap(), RxEvent::PduDone { data_digest_ok: true });
        }
        assert_eq!(rx.next(&n, Role::Host).unwrap(), RxEvent::NeedMore);
    }
}
