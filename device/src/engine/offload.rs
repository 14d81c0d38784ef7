//! The offload engine: TCP segmentation (IPv4 with options, IPv6), UDP
//! segmentation (USO), IPv4 fragmentation of UDP (UFO) and checksum insertion.
//!
//! Pure code, no I/O. The packet is a byte stream described by [`Slice`]s
//! (pointers into mapped guest memory, or into test buffers). Each emitted
//! frame is a small rebuilt header plus slices of that stream: payload is
//! never copied, only read once for its checksum.

use crate::abi::{TxError, MAX_HDR, MIN_MSS};
use crate::engine::csum;
use crate::engine::wire::{self, Headers, IpPacket, L3, L4};

/// A readable byte range. It points either into mapped guest memory (kept
/// mapped by the caller for as long as the slice lives) or into a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Slice {
    pub ptr: *const u8,
    pub len: usize,
}

impl Slice {
    pub fn from_bytes(b: &[u8]) -> Self {
        Self {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }
}

/// A packet: the concatenation of its slices.
///
/// Invariant (upheld by whoever builds it): every slice is readable for its
/// whole length while the `Stream` is used.
pub struct Stream<'a> {
    slices: &'a [Slice],
    len: usize,
}

impl<'a> Stream<'a> {
    /// # Safety
    /// Every slice must stay readable (it may change concurrently) while the
    /// returned stream, and any slice taken from it, is in use.
    pub unsafe fn new(slices: &'a [Slice]) -> Self {
        Self {
            slices,
            len: slices.iter().map(|s| s.len).sum(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` on each piece of `off..off+len` (clamped to the stream).
    fn for_each(&self, mut off: usize, mut len: usize, mut f: impl FnMut(Slice)) {
        for s in self.slices {
            if len == 0 {
                break;
            }
            if off >= s.len {
                off -= s.len;
                continue;
            }
            let n = (s.len - off).min(len);
            // SAFETY: off + n <= s.len, so the pointer stays inside the slice.
            let ptr = unsafe { s.ptr.add(off) };
            f(Slice { ptr, len: n });
            off = 0;
            len -= n;
        }
    }

    /// Copies `off..off+out.len()` into `out`; returns the bytes copied.
    pub fn copy_out(&self, off: usize, out: &mut [u8]) -> usize {
        let mut done = 0;
        self.for_each(off, out.len(), |s| {
            // SAFETY: `s` is readable (stream invariant) and `out` has room for
            // s.len more bytes; raw copy, the source may change concurrently.
            unsafe { std::ptr::copy_nonoverlapping(s.ptr, out[done..].as_mut_ptr(), s.len) };
            done += s.len;
        });
        done
    }

    /// Partial checksum of `off..off+len`, as if it started at an even offset.
    pub fn partial_sum(&self, off: usize, len: usize) -> u64 {
        let mut acc = 0u64;
        let mut pos = 0usize;
        self.for_each(off, len, |s| {
            // SAFETY: `s` is readable (stream invariant).
            let p = unsafe { csum::partial_raw(s.ptr, s.len) };
            acc = csum::combine(acc, p, pos);
            pos += s.len;
        });
        acc
    }

    /// Appends the slices of `off..off+len` to `out`.
    pub fn slices(&self, off: usize, len: usize, out: &mut Vec<Slice>) {
        self.for_each(off, len, |s| out.push(s));
    }
}

/// What the first descriptor of the packet asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub tso: bool,
    pub uso: bool,
    pub ufo: bool,
    pub ip_csum: bool,
    pub l4_csum: bool,
    /// The buffers may change while in flight (user memory): send a copy,
    /// so that every frame's checksums match the bytes it carries.
    pub snapshot: bool,
    pub mss: u16,
    /// L3 MTU.
    pub mtu: u32,
}

impl Request {
    /// What splits a TCP superpacket from the host (a receive with a
    /// vnet-header `gso_size`) into frames for the guest: TSO with both
    /// checksums at `gso_size`. No MTU limit: the host's gso_size already
    /// fits its MTU, and the guest's RX buffers take any frame size.
    pub fn host_superpacket(gso_size: u16) -> Self {
        Self {
            tso: true,
            ip_csum: true,
            l4_csum: true,
            mss: gso_size,
            mtu: u32::from(u16::MAX),
            ..Default::default()
        }
    }
}

/// What was emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Emitted {
    pub frames: u64,
    pub bytes: u64,
}

/// The GSO metadata of a superpacket handed off unsegmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    /// `vnet::gso::TCPV4`, `TCPV6` or `UDP_L4`.
    pub gso_type: u8,
    pub gso_size: u16,
    pub hdr_len: u16,
    /// The L4 checksum: over `csum_start..`, stored at `csum_start +
    /// csum_offset`, which holds the pseudo-header sum.
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// Receives each frame: a rebuilt header (possibly empty) and payload slices.
pub trait FrameSink {
    /// Returns false if the frame could not be sent.
    fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool;

    /// A whole TSO/USO packet for a receiver that segments it itself (see
    /// [`handoff`]). Returns false if it could not be sent; a sink that
    /// cannot take superpackets keeps this default.
    fn superpacket(&mut self, _gso: &Gso, _header: &[u8], _payload: &[Slice]) -> bool {
        false
    }
}

struct Out<'s, S: FrameSink> {
    sink: &'s mut S,
    scratch: Vec<Slice>,
    emitted: Emitted,
    failed: bool,
}

impl<S: FrameSink> Out<'_, S> {
    fn send(&mut self, stream: &Stream, header: &[u8], off: usize, len: usize) {
        self.scratch.clear();
        stream.slices(off, len, &mut self.scratch);
        if self.sink.frame(header, &self.scratch) {
            self.emitted.frames += 1;
            self.emitted.bytes += (header.len() + len) as u64;
        } else {
            self.failed = true;
        }
    }
}

/// A packet whose headers are parsed, for the paths that rewrite them.
struct Job<'a, 'o, S: FrameSink> {
    /// The packet's bytes.
    stream: &'a Stream<'a>,
    /// What was asked.
    req: &'a Request,
    /// Where its headers are.
    h: &'a Headers,
    /// A copy of its first bytes, to rewrite.
    hdr: &'a mut [u8; MAX_HDR],
    /// Where its frames go.
    out: &'a mut Out<'o, S>,
}

/// Writes the IPv4 header checksum (nothing for IPv6, which has none).
fn ipv4_checksum(h: &Headers, hdr: &mut [u8]) {
    if let IpPacket::V4(mut ip) = h.ip_mut(hdr) {
        ip.fill_checksum();
    }
}

/// Parses the headers (from the first bytes of the stream) for an offload.
fn headers(stream: &Stream, hdr: &mut [u8; MAX_HDR]) -> Result<(Headers, usize), TxError> {
    let n = stream.copy_out(0, hdr);
    let h = wire::parse(&hdr[..n]).map_err(|_| TxError::BadHdr)?;
    if h.is_fragment {
        return Err(TxError::BadHdr);
    }
    Ok((h, n))
}

/// Runs the requested offloads on one packet and emits its frames.
pub fn process<S: FrameSink>(
    stream: &Stream,
    req: &Request,
    sink: &mut S,
) -> Result<Emitted, TxError> {
    if req.snapshot {
        let mut copy = vec![0u8; stream.len()];
        stream.copy_out(0, &mut copy);
        let slices = [Slice::from_bytes(&copy)];
        // SAFETY: the slice points into `copy`, alive until the end of this call.
        let stream = unsafe { Stream::new(&slices) };
        let req = Request {
            snapshot: false,
            ..*req
        };
        return process(&stream, &req, sink);
    }
    let mut out = Out {
        sink,
        scratch: Vec::with_capacity(32),
        emitted: Emitted::default(),
        failed: false,
    };
    let segmenting = req.tso || req.uso || req.ufo;
    if !segmenting && !req.ip_csum && !req.l4_csum {
        let max = req.mtu as usize + wire::VLAN_HEADER_LEN;
        if stream.len() > max {
            return Err(TxError::TooBig);
        }
        out.send(stream, &[], 0, stream.len());
    } else {
        let mut hdr = [0u8; MAX_HDR];
        let (h, _) = headers(stream, &mut hdr)?;
        if h.hdr_len > stream.len() {
            return Err(TxError::BadHdr);
        }
        let job = Job {
            stream,
            req,
            h: &h,
            hdr: &mut hdr,
            out: &mut out,
        };
        if segmenting {
            segment(job)?;
        } else {
            checksum_only(job)?;
        }
    }
    if out.failed {
        return Err(TxError::Backend);
    }
    Ok(out.emitted)
}

/// Hands a TSO or USO packet to the sink in one piece, as a receiver with
/// segmentation offload (a vnet-header TAP) takes it: IP lengths and the
/// IPv4 checksum set for the whole packet, the L4 checksum field holding the
/// pseudo-header sum, and the GSO metadata beside it. Returns `Ok(None)`
/// when the packet is not one to hand off (not TSO/USO, a single segment,
/// or over 64 KiB at L3); the caller then runs [`process`].
pub fn handoff<S: FrameSink>(
    stream: &Stream,
    req: &Request,
    sink: &mut S,
) -> Result<Option<Emitted>, TxError> {
    if !(req.tso || req.uso) || req.ufo || req.snapshot {
        return Ok(None);
    }
    let mut hdr = [0u8; MAX_HDR];
    let (h, _) = headers(stream, &mut hdr)?;
    let mss = usize::from(req.mss);
    let l3_len = stream.len().saturating_sub(h.l3_off);
    let payload = stream.len().saturating_sub(h.hdr_len);
    let fits = l3_len <= usize::from(u16::MAX) && h.hdr_len - h.l3_off + mss <= req.mtu as usize;
    let l4_ok = match h.l4 {
        L4::Tcp => req.tso,
        L4::Udp => req.uso,
    };
    // Below MIN_MSS, `process` refuses the packet with SMALL_MSS.
    if mss < MIN_MSS || payload <= mss || !fits || !l4_ok {
        return Ok(None);
    }
    let hdr = &mut hdr[..h.hdr_len];
    h.ip_mut(hdr).set_packet_len(l3_len);
    ipv4_checksum(&h, hdr);
    let l4_len = stream.len() - h.l4_off;
    if h.l4 == L4::Udp {
        h.udp_mut(hdr).set_length(l4_len as u16);
    }
    // The checksum field holds the pseudo-header sum, not complemented.
    let pseudo = csum::fold(h.ip(hdr).pseudo_header_sum(h.proto(), l4_len));
    let pseudo = u16::from_be_bytes(pseudo.to_ne_bytes());
    match h.l4 {
        L4::Tcp => h.tcp_mut(hdr).set_checksum(pseudo),
        L4::Udp => h.udp_mut(hdr).set_checksum(pseudo),
    }
    let gso = Gso {
        gso_type: match (h.l4, h.l3) {
            (L4::Tcp, L3::Ipv4) => crate::engine::vnet::gso::TCPV4,
            (L4::Tcp, L3::Ipv6) => crate::engine::vnet::gso::TCPV6,
            (L4::Udp, _) => crate::engine::vnet::gso::UDP_L4,
        },
        gso_size: req.mss,
        hdr_len: h.hdr_len as u16,
        csum_start: h.l4_off as u16,
        csum_offset: h.l4_csum_offset() as u16,
    };
    let mut slices = Vec::with_capacity(16);
    stream.slices(h.hdr_len, payload, &mut slices);
    if !sink.superpacket(&gso, hdr, &slices) {
        return Err(TxError::Backend);
    }
    Ok(Some(Emitted {
        frames: 1,
        bytes: stream.len() as u64,
    }))
}

fn checksum_only<S: FrameSink>(job: Job<'_, '_, S>) -> Result<(), TxError> {
    let Job {
        stream,
        req,
        h,
        hdr,
        out,
    } = job;
    // The IP header's length must fit in the frame; bytes past it are padding.
    let l3_end = h.l3_off + h.ip_len;
    if l3_end > stream.len() || l3_end < h.hdr_len {
        return Err(TxError::BadHdr);
    }
    if stream.len() > req.mtu as usize + h.l3_off {
        return Err(TxError::TooBig);
    }
    let hdr = &mut hdr[..h.hdr_len];
    if req.l4_csum {
        let sum = stream.partial_sum(h.hdr_len, l3_end - h.hdr_len);
        h.fill_l4_checksum(hdr, l3_end - h.l4_off, sum);
    }
    if req.ip_csum {
        ipv4_checksum(h, hdr);
    }
    out.send(stream, hdr, h.hdr_len, stream.len() - h.hdr_len);
    Ok(())
}

fn segment<S: FrameSink>(job: Job<'_, '_, S>) -> Result<(), TxError> {
    let Job {
        stream,
        req,
        h,
        hdr,
        out,
    } = job;
    let payload = stream.len() - h.hdr_len;
    if payload == 0 {
        return Err(TxError::NoPayload);
    }
    let mss = usize::from(req.mss);
    let l3_hdr = h.hdr_len - h.l3_off;
    if mss == 0 {
        return Err(TxError::BadMss);
    }
    // Bounded work per chain: at most MAX_PKT / MIN_MSS frames.
    if mss < MIN_MSS {
        return Err(TxError::SmallMss);
    }
    if req.ufo {
        return fragment_udp(Job {
            stream,
            req,
            h,
            hdr,
            out,
        });
    }
    match (req.tso, h.l4) {
        (true, L4::Tcp) | (false, L4::Udp) => {}
        _ => return Err(TxError::BadHdr),
    }
    if l3_hdr + mss > req.mtu as usize {
        return Err(TxError::BadMss);
    }
    let ip_id = match h.ip(&hdr[..]) {
        IpPacket::V4(ip) => ip.ident(),
        IpPacket::V6(_) => 0,
    };
    let (seq, flags) = match h.l4 {
        L4::Tcp => {
            let t = h.tcp(&hdr[..]);
            (t.seq_number(), t.flags())
        }
        L4::Udp => (0, 0),
    };
    let l4_hdr = h.hdr_len - h.l4_off;
    let nseg = payload.div_ceil(mss);
    let mut seg = [0u8; MAX_HDR];
    for i in 0..nseg {
        let off = i * mss;
        let len = mss.min(payload - off);
        let s = &mut seg[..h.hdr_len];
        s.copy_from_slice(&hdr[..h.hdr_len]);
        let mut ip = h.ip_mut(s);
        ip.set_packet_len(l3_hdr + len);
        if let IpPacket::V4(ip) = &mut ip {
            ip.set_ident(ip_id.wrapping_add(i as u16));
        }
        match h.l4 {
            L4::Tcp => {
                let mut t = h.tcp_mut(s);
                t.set_seq_number(seq.wrapping_add(off as u32));
                let mut f = flags;
                if i + 1 != nseg {
                    f &= !(wire::TCP_FIN | wire::TCP_PSH);
                }
                if i != 0 {
                    f &= !wire::TCP_CWR;
                }
                t.set_flags(f);
            }
            L4::Udp => h.udp_mut(s).set_length((l4_hdr + len) as u16),
        }
        let sum = stream.partial_sum(h.hdr_len + off, len);
        h.fill_l4_checksum(s, l4_hdr + len, sum);
        ipv4_checksum(h, s);
        out.send(stream, s, h.hdr_len + off, len);
    }
    Ok(())
}

/// UFO: one UDP datagram sent as IPv4 fragments. The UDP checksum covers the
/// whole datagram; the first fragment carries the UDP header.
fn fragment_udp<S: FrameSink>(job: Job<'_, '_, S>) -> Result<(), TxError> {
    let Job {
        stream,
        req,
        h,
        hdr,
        out,
    } = job;
    if h.l3 != L3::Ipv4 || h.l4 != L4::Udp {
        return Err(TxError::BadHdr);
    }
    let ihl = h.l4_off - h.l3_off;
    let udp_len = stream.len() - h.l4_off;
    if ihl + udp_len > usize::from(u16::MAX) {
        return Err(TxError::TooBig);
    }
    let frag = (usize::from(req.mss).min(req.mtu as usize - ihl)) & !7;
    if frag < 8 {
        return Err(TxError::BadMss);
    }
    if frag < MIN_MSS {
        return Err(TxError::SmallMss);
    }
    let data_len = stream.len() - h.hdr_len;
    h.udp_mut(hdr).set_length(udp_len as u16);
    let sum = stream.partial_sum(h.hdr_len, data_len);
    h.fill_l4_checksum(&mut hdr[..h.hdr_len], udp_len, sum);
    // Fragment the L3 payload (UDP header + data). The UDP header lives in
    // `hdr`, the data in the stream; fragment k covers l3 payload bytes
    // k*frag .. k*frag+len.
    let mut f = [0u8; MAX_HDR];
    let mut at = 0usize;
    while at < udp_len {
        let len = frag.min(udp_len - at);
        let last = at + len == udp_len;
        // Header: Ethernet + IP, plus the UDP header for the first fragment.
        let hl = if at == 0 { h.hdr_len } else { h.l4_off };
        f[..hl].copy_from_slice(&hdr[..hl]);
        if let IpPacket::V4(mut ip) = h.ip_mut(&mut f) {
            ip.set_total_len((ihl + len) as u16);
            ip.set_fragment(!last, at);
            ip.fill_checksum();
        }
        // Stream offset of this fragment's data (after the UDP header).
        let (data_off, data_len) = if at == 0 {
            (h.hdr_len, len - wire::len::UDP)
        } else {
            (h.l4_off + at, len)
        };
        out.send(stream, &f[..hl], data_off, data_len);
        at += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Streams over uneven slices and each offload on small packets, judged
    //! by etherparse. Small enough to run under Miri (ci/miri.sh), which
    //! checks the raw-pointer reads of `Stream` and `csum::partial_raw`.
    use super::*;
    use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};

    /// A sink that copies every frame.
    #[derive(Default)]
    struct Frames(Vec<Vec<u8>>);

    impl FrameSink for Frames {
        fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool {
            let mut f = header.to_vec();
            for s in payload {
                // SAFETY: the slices come from the stream under test, whose
                // buffers outlive the `process` call.
                f.extend_from_slice(unsafe { std::slice::from_raw_parts(s.ptr, s.len) });
            }
            self.0.push(f);
            true
        }
    }

    /// Cuts `data` into separately allocated pieces of the given lengths
    /// (cycled), including empty ones.
    fn cut(data: &[u8], lens: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (mut at, mut k) = (0, 0);
        while at < data.len() {
            let n = lens[k % lens.len()].min(data.len() - at);
            out.push(data[at..at + n].to_vec());
            at += n;
            k += 1;
        }
        out
    }

    fn run(pkt: &[u8], lens: &[usize], req: Request) -> (Result<Emitted, TxError>, Vec<Vec<u8>>) {
        let bufs = cut(pkt, lens);
        let slices: Vec<Slice> = bufs.iter().map(|b| Slice::from_bytes(b)).collect();
        // SAFETY: the slices point into `bufs`, alive for this whole function.
        let stream = unsafe { Stream::new(&slices) };
        let mut sink = Frames::default();
        let r = process(&stream, &req, &mut sink);
        (r, sink.0)
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn tcp4(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
            .tcp(40000, 5201, 0xffff_fc00, 512)
            .ack(7)
            .psh()
            .write(&mut v, &payload(n))
            .unwrap();
        v
    }

    /// Checks a frame's IP and L4 checksums with etherparse; returns the
    /// L4 payload.
    fn verified(f: &[u8]) -> Vec<u8> {
        let p = PacketHeaders::from_ethernet_slice(f).unwrap();
        let data = p.payload.slice();
        match (p.net, p.transport) {
            (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Tcp(t))) => {
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                assert_eq!(t.checksum, t.calc_checksum_ipv4(&ip, data).unwrap());
            }
            (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Udp(u))) => {
                assert_eq!(u.checksum, u.calc_checksum_ipv6(&ip, data).unwrap());
            }
            (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(u))) => {
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                assert_eq!(u.checksum, u.calc_checksum_ipv4(&ip, data).unwrap());
            }
            other => panic!("unexpected headers {other:?}"),
        }
        data.to_vec()
    }

    #[test]
    fn stream_copy_and_sum_across_uneven_slices() {
        let data = payload(301);
        let bufs = cut(&data, &[1, 0, 3, 64, 2, 7, 33]);
        let slices: Vec<Slice> = bufs.iter().map(|b| Slice::from_bytes(b)).collect();
        // SAFETY: the slices point into `bufs`, alive for this whole test.
        let s = unsafe { Stream::new(&slices) };
        assert_eq!(s.len(), data.len());
        for off in [0usize, 1, 2, 3, 4, 66, 67, 150, 299, 300, 301, 400] {
            for len in [0usize, 1, 2, 5, 40, 100, 1000] {
                let end = (off + len).min(data.len());
                let start = off.min(data.len());
                let mut out = vec![0u8; len];
                assert_eq!(s.copy_out(off, &mut out), end - start);
                assert_eq!(out[..end - start], data[start..end]);
                let want = csum::fold(csum::partial(&data[start..end]));
                assert_eq!(csum::fold(s.partial_sum(off, len)), want, "{off}+{len}");
                let mut pieces = Vec::new();
                s.slices(off, len, &mut pieces);
                assert_eq!(pieces.iter().map(|p| p.len).sum::<usize>(), end - start);
            }
        }
    }

    #[test]
    fn tso_over_split_slices_verifies() {
        let pkt = tcp4(2500);
        // The header itself is split, at odd offsets.
        let req = Request {
            tso: true,
            mss: 1000,
            mtu: 1500,
            ..Default::default()
        };
        let (r, frames) = run(&pkt, &[5, 1, 30, 999, 3], req);
        assert_eq!(r.unwrap().frames, 3);
        let mut got = Vec::new();
        for f in &frames {
            got.extend(verified(f));
        }
        assert_eq!(got, payload(2500));
    }

    /// An Ethernet + IPv6 (or IPv4) + UDP frame with `len` bytes of payload.
    fn udp_frame(v6: bool, len: usize) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([1; 6], [2; 6]);
        let ip = if v6 {
            eth.ipv6([0x20; 16], [0x21; 16], 64)
        } else {
            eth.ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        };
        let mut f = Vec::new();
        ip.udp(1, 2).write(&mut f, &payload(len)).unwrap();
        f
    }

    #[test]
    fn uso_ufo_and_checksum_only_verify() {
        let udp6 = udp_frame(true, 777);
        let uso = Request {
            uso: true,
            mss: 300,
            mtu: 1500,
            ..Default::default()
        };
        let (r, frames) = run(&udp6, &[77, 1], uso);
        assert_eq!(r.unwrap().frames, 3);
        let got: Vec<u8> = frames.iter().flat_map(|f| verified(f)).collect();
        assert_eq!(got, payload(777));

        // UFO over IPv4: alike in shape to the USO case above, with its own
        // request and checks.
        let udp4 = udp_frame(false, 1000);
        let ufo = Request {
            ufo: true,
            mss: 400,
            mtu: 1500,
            ..Default::default()
        };
        let (r, frames) = run(&udp4, &[9, 50], ufo);
        assert_eq!(r.unwrap().frames, 3); // 1008 bytes of UDP in 400-byte fragments
        for f in &frames {
            let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
            assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        }

        let csum_only = Request {
            ip_csum: true,
            l4_csum: true,
            snapshot: true,
            mtu: 1500,
            ..Default::default()
        };
        let (r, frames) = run(&tcp4(100), &[1, 2, 3], csum_only);
        assert_eq!(r.unwrap().frames, 1);
        assert_eq!(verified(&frames[0]), payload(100));
    }
}
