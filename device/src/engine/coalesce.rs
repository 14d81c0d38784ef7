//! Receive coalescing, the receive side of driver-level segmentation: TCP
//! segments of one flow are queued, the first header is kept with its length
//! fields extended, and only the payload of the later segments is appended.
//!
//! Flush rules, each counted:
//! - a queue is flushed when it reaches `max_segs` segments, `max_bytes` of
//!   payload, or is older than `timeout`;
//! - a packet bypasses coalescing, after its flow's queue is flushed, when it
//!   is out of order, has no payload, carries RST/SYN/URG/FIN, is an IP
//!   fragment, has IP options or extension headers, or its checksum was not
//!   verified; also when its ACK, window or TCP options differ from the
//!   queue's (the kept header could not describe it);
//! - a full flow table flushes its oldest queue;
//! - everything is flushed when the backend has nothing more to read, as
//!   Linux GRO flushes at the end of a NAPI poll.
//!
//! Pure code: frames in, frames and metadata out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{rxstat, GSO_TYPE_TCPV4, GSO_TYPE_TCPV6};
use crate::engine::verdict::RxMeta;
use crate::engine::wire::{self, Headers, IpPacket, L3, L4};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub max_segs: u16,
    pub max_bytes: usize,
    pub timeout: Duration,
    pub max_flows: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_segs: 44,
            // A superpacket with the longest headers stays within 64 KiB.
            max_bytes: 65535 - wire::len::IPV6 - wire::len::TCP_MAX - wire::ETH_HLEN,
            timeout: Duration::from_micros(500),
            max_flows: 8,
        }
    }
}

/// Why a queue was flushed or a packet bypassed coalescing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Reason {
    Count,
    Bytes,
    Timeout,
    OutOfOrder,
    NoPayload,
    Flags,
    Fragment,
    NotVerified,
    Mismatch,
    TableFull,
    Idle,
    NotTcp,
    /// A superpacket of the flow arrived whole from the host.
    HostGso,
}

const REASONS: usize = 13;

/// The names of the reasons, indexed by [`Reason`], as the metrics document
/// (`docs/metrics.md`) spells them.
pub const REASON_NAMES: [&str; REASONS] = [
    "count",
    "bytes",
    "timeout",
    "out_of_order",
    "no_payload",
    "flags",
    "fragment",
    "not_verified",
    "mismatch",
    "table_full",
    "idle",
    "not_tcp",
    "host_gso",
];

/// Counts per reason, and segments merged.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    counts: [u64; REASONS],
    pub merged: u64,
    /// Where the counts are also published for other threads (the metrics).
    stats: Option<Arc<FlushStats>>,
}

impl Tally {
    fn note(&mut self, r: Reason) {
        self.counts[r as usize] += 1;
        if let Some(s) = &self.stats {
            s.counts[r as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count(&self, r: Reason) -> u64 {
        self.counts[r as usize]
    }
}

struct Flow {
    key: FlowKey,
    /// The first segment's headers (Ethernet to end of TCP).
    hdr: Vec<u8>,
    h: Headers,
    payload: Vec<u8>,
    segs: u16,
    gso_size: u16,
    next_seq: u32,
    psh: bool,
    started: Instant,
}

/// The flush reasons of one or more coalescers, readable from any thread.
/// Unlike a [`Tally`], which starts again with each coalescer (a device
/// reset makes a new one), these count from the moment they are made.
#[derive(Debug, Default)]
pub struct FlushStats {
    counts: [AtomicU64; REASONS],
}

impl FlushStats {
    pub fn get(&self, r: Reason) -> u64 {
        self.counts[r as usize].load(Ordering::Relaxed)
    }

    /// Every reason by its name, zeros included.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        REASON_NAMES
            .iter()
            .zip(&self.counts)
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
            .collect()
    }
}

pub struct Coalescer {
    pub params: Params,
    flows: Vec<Flow>,
    pub tally: Tally,
}

/// Flow key: addresses, ports, and the whole L2 header (MACs, 802.1Q tag,
/// ethertype), as Linux GRO compares it; otherwise an IPv4 and an IPv6 flow
/// whose address bytes coincide, or one 5-tuple on two VLANs or from two
/// MACs, would share a queue and deliver each other's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    /// Source and destination addresses, zero-padded to 16 bytes.
    src: [u8; 16],
    dst: [u8; 16],
    /// Source and destination ports.
    ports: (u16, u16),
    /// The L2 header, zero-padded: an untagged one (14 bytes) cannot equal
    /// a tagged one, which has the 0x8100 tag where the untagged one has
    /// its IPv4/IPv6 ethertype.
    l2: [u8; wire::VLAN_HEADER_LEN],
}

fn flow_key(f: &[u8], h: &Headers) -> FlowKey {
    let mut k = FlowKey {
        src: [0; 16],
        dst: [0; 16],
        ports: (0, 0),
        l2: [0; wire::VLAN_HEADER_LEN],
    };
    let ip = h.ip(f);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    k.src[..src.len()].copy_from_slice(src);
    k.dst[..dst.len()].copy_from_slice(dst);
    let tcp = h.tcp(f);
    k.ports = (tcp.src_port(), tcp.dst_port());
    let eth = h.ethernet(f);
    let l2 = eth.header();
    k.l2[..l2.len()].copy_from_slice(l2);
    k
}

/// A delivery: the bytes of a frame and its metadata.
pub type Deliver<'a> = dyn FnMut(&[u8], RxMeta) + 'a;

impl Coalescer {
    pub fn new(params: Params) -> Self {
        Self {
            params,
            flows: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Like [`Coalescer::new`], publishing every flush reason to `stats`.
    pub fn with_stats(params: Params, stats: Arc<FlushStats>) -> Self {
        let mut c = Self::new(params);
        c.tally.stats = Some(stats);
        c
    }

    /// An empty coalescer with the same parameters, publishing to the same
    /// [`FlushStats`] (what a device reset makes).
    pub fn renewed(&self) -> Self {
        let mut c = Self::new(self.params);
        c.tally.stats = self.tally.stats.clone();
        c
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    fn flush_at(&mut self, i: usize, why: Reason, out: &mut Deliver) {
        let f = self.flows.swap_remove(i);
        self.tally.note(why);
        emit(f, out);
    }

    fn flush_key(&mut self, key: &FlowKey, why: Reason, out: &mut Deliver) {
        if let Some(i) = self.flows.iter().position(|f| &f.key == key) {
            self.flush_at(i, why, out);
        }
    }

    /// Flushes the queue of the flow `frame` belongs to, so that a frame
    /// delivered around the coalescer (a host superpacket) keeps its order.
    pub fn flush_flow_of(&mut self, frame: &[u8], out: &mut Deliver) {
        if let Ok(h) = wire::parse(frame) {
            if h.l4 == L4::Tcp {
                self.flush_key(&flow_key(frame, &h), Reason::HostGso, out);
            }
        }
    }

    /// Flushes every queue (the backend is drained).
    pub fn flush_all(&mut self, why: Reason, out: &mut Deliver) {
        while !self.flows.is_empty() {
            self.flush_at(self.flows.len() - 1, why, out);
        }
    }

    /// Flushes queues older than the timeout.
    pub fn flush_expired(&mut self, now: Instant, out: &mut Deliver) {
        let mut i = 0;
        while i < self.flows.len() {
            if now.duration_since(self.flows[i].started) >= self.params.timeout {
                self.flush_at(i, Reason::Timeout, out);
            } else {
                i += 1;
            }
        }
    }

    /// Takes one received frame whose checksum verdict is `status`.
    pub fn push(&mut self, frame: &[u8], status: u16, now: Instant, out: &mut Deliver) {
        self.flush_expired(now, out);
        let raw = RxMeta {
            status,
            ..Default::default()
        };
        let Ok(h) = wire::parse(frame) else {
            self.tally.note(Reason::NotTcp);
            return out(frame, raw);
        };
        if h.l4 != L4::Tcp {
            self.tally.note(Reason::NotTcp);
            return out(frame, raw);
        }
        let key = flow_key(frame, &h);
        let l3_end = h.l3_off + h.ip_len;
        let tcp = h.tcp(frame);
        let flags = tcp.flags();
        let why = if status & rxstat::L4_OK == 0 || l3_end > frame.len() || l3_end < h.hdr_len {
            Some(Reason::NotVerified)
        } else if h.is_fragment {
            Some(Reason::Fragment)
        } else if l3_end == h.hdr_len {
            Some(Reason::NoPayload)
        } else if flags & (wire::TCP_RST | wire::TCP_SYN | wire::TCP_URG | wire::TCP_FIN) != 0 {
            Some(Reason::Flags)
        } else if matches!(h.ip(frame), IpPacket::V4(ip) if !ip.options().is_empty()) {
            Some(Reason::Mismatch) // IP options
        } else {
            None
        };
        if let Some(why) = why {
            self.flush_key(&key, why, out);
            self.tally.note(why);
            return out(frame, raw);
        }
        let seq = tcp.seq_number();
        let payload = &frame[h.hdr_len..l3_end];
        let psh = flags & wire::TCP_PSH != 0;
        if let Some(i) = self.flows.iter().position(|f| f.key == key) {
            let f = &self.flows[i];
            if seq != f.next_seq {
                self.flush_at(i, Reason::OutOfOrder, out);
                self.tally.note(Reason::OutOfOrder);
                return out(frame, raw);
            }
            // Same ACK, window and options: the kept header speaks for all.
            let kept = f.h.tcp(&f.hdr);
            let same = tcp.header_len() == kept.header_len()
                && tcp.ack_number() == kept.ack_number()
                && tcp.window_len() == kept.window_len()
                && tcp.options() == kept.options();
            let too_big = payload.len() > usize::from(f.gso_size)
                || f.payload.len() + payload.len() > self.params.max_bytes;
            if !same || too_big {
                let why = if same {
                    Reason::Bytes
                } else {
                    Reason::Mismatch
                };
                self.flush_at(i, why, out);
                // Starts a new queue below.
            } else {
                let f = &mut self.flows[i];
                f.payload.extend_from_slice(payload);
                f.segs += 1;
                f.next_seq = seq.wrapping_add(payload.len() as u32);
                f.psh |= psh;
                self.tally.merged += 1;
                // A short segment, PSH, or a full queue ends the superpacket.
                let short = payload.len() < usize::from(f.gso_size);
                if f.segs >= self.params.max_segs {
                    self.flush_at(i, Reason::Count, out);
                } else if short
                    || psh
                    || f.payload.len() + usize::from(f.gso_size) > self.params.max_bytes
                {
                    self.flush_at(i, Reason::Bytes, out);
                }
                return;
            }
        }
        if self.flows.len() >= self.params.max_flows {
            let oldest = (0..self.flows.len())
                .min_by_key(|&i| self.flows[i].started)
                .expect("table is full, so not empty");
            self.flush_at(oldest, Reason::TableFull, out);
        }
        self.flows.push(Flow {
            key,
            hdr: frame[..h.hdr_len].to_vec(),
            h,
            payload: payload.to_vec(),
            segs: 1,
            gso_size: payload.len() as u16,
            next_seq: seq.wrapping_add(payload.len() as u32),
            psh,
            started: now,
        });
        // A queue of one segment is already full when max_segs is 1.
        if psh || self.params.max_segs <= 1 {
            let i = self.flows.len() - 1;
            let why = if psh { Reason::Bytes } else { Reason::Count };
            self.flush_at(i, why, out);
        }
    }
}

/// Builds the superpacket: the first header, lengths extended, then all the
/// payload. A single segment goes out exactly as it came.
fn emit(f: Flow, out: &mut Deliver) {
    let mut frame = f.hdr;
    let h = f.h;
    let l3_len = h.hdr_len - h.l3_off + f.payload.len();
    let mut ip = h.ip_mut(&mut frame);
    ip.set_packet_len(l3_len);
    if let IpPacket::V4(ip) = &mut ip {
        ip.fill_checksum();
    }
    if f.psh {
        let mut tcp = h.tcp_mut(&mut frame);
        tcp.set_flags(tcp.flags() | wire::TCP_PSH);
    }
    frame.extend_from_slice(&f.payload);
    let mut meta = RxMeta {
        status: rxstat::L4_OK | if h.l3 == L3::Ipv4 { rxstat::IP_OK } else { 0 },
        ..Default::default()
    };
    if f.segs > 1 {
        // The TCP checksum field is the first segment's: every segment was
        // verified, and the stack is told so (L4_OK) rather than re-checking.
        meta.status |= rxstat::COALESCED;
        meta.gso_size = f.gso_size;
        meta.gso_segs = f.segs;
        meta.gso_type = if h.l3 == L3::Ipv4 {
            GSO_TYPE_TCPV4
        } else {
            GSO_TYPE_TCPV6
        };
    }
    out(&frame, meta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};

    const MSS: usize = 1000;

    fn seg(
        seq: u32,
        len: usize,
        sport: u16,
        f: impl FnOnce(&mut etherparse::TcpHeader),
    ) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| (i as u32 + seq) as u8).collect();
        let mut tcp = etherparse::TcpHeader::new(sport, 5201, seq, 500);
        tcp.ack = true;
        tcp.acknowledgment_number = 9;
        f(&mut tcp);
        let mut ip = etherparse::Ipv4Header::new(
            (tcp.header_len() + len) as u16,
            64,
            etherparse::IpNumber::TCP,
            [198, 18, 0, 1],
            [198, 18, 0, 2],
        )
        .unwrap();
        ip.header_checksum = ip.calc_header_checksum();
        tcp.checksum = tcp.calc_checksum_ipv4(&ip, &payload).unwrap();
        let mut v = Vec::new();
        etherparse::Ethernet2Header {
            source: [1; 6],
            destination: [2; 6],
            ether_type: etherparse::EtherType::IPV4,
        }
        .write(&mut v)
        .unwrap();
        ip.write(&mut v).unwrap();
        tcp.write(&mut v).unwrap();
        v.extend_from_slice(&payload);
        v
    }

    fn plain(seq: u32, len: usize) -> Vec<u8> {
        seg(seq, len, 40000, |_| {})
    }

    struct Run {
        c: Coalescer,
        out: Vec<(Vec<u8>, RxMeta)>,
        now: Instant,
    }

    impl Run {
        fn new() -> Self {
            Self::with(Params {
                max_bytes: 20 * MSS,
                ..Params::default()
            })
        }
        fn with(p: Params) -> Self {
            Self {
                c: Coalescer::new(p),
                out: Vec::new(),
                now: Instant::now(),
            }
        }
        fn push(&mut self, f: &[u8], status: u16) {
            let out = &mut self.out;
            self.c
                .push(f, status, self.now, &mut |b, m| out.push((b.to_vec(), m)));
        }
        fn ok(&mut self, f: &[u8]) {
            self.push(f, rxstat::L4_OK | rxstat::IP_OK);
        }
        fn idle(&mut self) {
            let out = &mut self.out;
            self.c
                .flush_all(Reason::Idle, &mut |b, m| out.push((b.to_vec(), m)));
        }
    }

    /// Independent check of a superpacket: IPv4 length and checksum, and the
    /// payload equal to the segments' payloads in order.
    fn check_super(frame: &[u8], segs: &[Vec<u8>]) {
        let p = PacketHeaders::from_ethernet_slice(frame).unwrap();
        let Some(NetHeaders::Ipv4(ip, _)) = p.net else {
            panic!()
        };
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(usize::from(ip.total_len), frame.len() - 14);
        let Some(TransportHeader::Tcp(_)) = p.transport else {
            panic!()
        };
        let want: Vec<u8> = segs.iter().flat_map(|s| s[54..].to_vec()).collect();
        assert_eq!(p.payload.slice(), &want[..]);
    }

    #[test]
    fn in_order_segments_merge_with_gso_metadata() {
        let mut r = Run::new();
        let segs: Vec<_> = (0..5).map(|i| plain(100 + (i * MSS) as u32, MSS)).collect();
        for s in &segs {
            r.ok(s);
        }
        assert!(r.out.is_empty(), "held until a flush");
        r.idle();
        assert_eq!(r.out.len(), 1);
        let (f, m) = &r.out[0];
        check_super(f, &segs);
        assert_eq!(
            (m.gso_size, m.gso_segs, m.gso_type),
            (MSS as u16, 5, GSO_TYPE_TCPV4)
        );
        assert_eq!(m.status, rxstat::L4_OK | rxstat::IP_OK | rxstat::COALESCED);
        assert_eq!(r.c.tally.merged, 4);
        assert_eq!(r.c.tally.count(Reason::Idle), 1);
    }

    #[test]
    fn flush_stats_outlive_a_renewed_coalescer() {
        let stats = Arc::new(FlushStats::default());
        let mut r = Run::new();
        r.c = Coalescer::with_stats(r.c.params, stats.clone());
        r.ok(&plain(100, MSS));
        r.idle();
        r.c = r.c.renewed();
        assert_eq!(r.c.tally.count(Reason::Idle), 0, "a new tally");
        r.ok(&plain(100 + MSS as u32, MSS));
        r.idle();
        assert_eq!(stats.get(Reason::Idle), 2);
        let snap = stats.snapshot();
        assert_eq!(snap.len(), REASONS);
        assert_eq!(snap["idle"], 2);
        assert_eq!(snap["host_gso"], 0);
        assert_eq!(REASON_NAMES[Reason::HostGso as usize], "host_gso");
    }

    /// `n` back-to-back segments of one flow, merged `max_segs` at most.
    fn in_order(max_segs: u16, n: usize) -> Run {
        let mut r = Run::with(Params {
            max_segs,
            ..Params::default()
        });
        for i in 0..n {
            r.ok(&plain((i * MSS) as u32, MSS));
        }
        r
    }

    #[test]
    fn count_limit_flushes() {
        let r = in_order(3, 7);
        assert_eq!(r.out.len(), 2);
        assert!(r.out.iter().all(|(_, m)| m.gso_segs == 3));
        assert_eq!(r.c.tally.count(Reason::Count), 2);
    }

    #[test]
    fn max_segs_one_never_merges() {
        // Found by the coalesce fuzz target: a superpacket of 2 segments.
        let r = in_order(1, 3);
        assert_eq!(r.out.len(), 3);
        assert!(r.out.iter().all(|(_, m)| m.gso_segs == 0));
        assert_eq!((r.c.tally.merged, r.c.tally.count(Reason::Count)), (0, 3));
    }

    #[test]
    fn byte_limit_and_short_segment_flush() {
        let mut r = Run::with(Params {
            max_bytes: 3 * MSS,
            ..Params::default()
        });
        for i in 0..3 {
            r.ok(&plain((i * MSS) as u32, MSS));
        }
        assert_eq!(r.out.len(), 1, "byte limit reached");
        assert_eq!(r.out[0].1.gso_segs, 3);
        r.ok(&plain((3 * MSS) as u32, MSS));
        r.ok(&plain((4 * MSS) as u32, 10)); // short: ends the superpacket
        assert_eq!(r.out.len(), 2);
        assert_eq!(r.out[1].1.gso_segs, 2);
    }

    #[test]
    fn timeout_flushes() {
        let mut r = Run::new();
        r.ok(&plain(0, MSS));
        r.now += Duration::from_millis(10);
        let out = &mut r.out;
        r.c.flush_expired(r.now, &mut |b, m| out.push((b.to_vec(), m)));
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.c.tally.count(Reason::Timeout), 1);
    }

    #[test]
    fn out_of_order_flushes_and_bypasses() {
        let mut r = Run::new();
        r.ok(&plain(0, MSS));
        r.ok(&plain(MSS as u32, MSS));
        let gap = plain(5 * MSS as u32, MSS);
        r.ok(&gap);
        assert_eq!(r.out.len(), 2);
        assert_eq!(r.out[0].1.gso_segs, 2);
        assert_eq!(r.out[1].0, gap, "bypassed untouched");
        assert_eq!(r.out[1].1.status & rxstat::COALESCED, 0);
        assert!(r.c.is_empty());
    }

    #[test]
    fn bypass_rules() {
        type Mk = fn() -> (Vec<u8>, u16);
        let cases: [(&str, Reason, Mk); 7] = [
            ("no payload", Reason::NoPayload, || {
                (plain(MSS as u32, 0), rxstat::L4_OK)
            }),
            ("RST", Reason::Flags, || {
                (seg(MSS as u32, 10, 40000, |t| t.rst = true), rxstat::L4_OK)
            }),
            ("SYN", Reason::Flags, || {
                (seg(MSS as u32, 10, 40000, |t| t.syn = true), rxstat::L4_OK)
            }),
            ("URG", Reason::Flags, || {
                (seg(MSS as u32, 10, 40000, |t| t.urg = true), rxstat::L4_OK)
            }),
            ("FIN", Reason::Flags, || {
                (seg(MSS as u32, 10, 40000, |t| t.fin = true), rxstat::L4_OK)
            }),
            ("unverified checksum", Reason::NotVerified, || {
                (plain(MSS as u32, MSS), 0)
            }),
            ("IP fragment", Reason::Fragment, || {
                let mut f = plain(MSS as u32, MSS);
                f[20] |= 0x20; // MF
                (f, rxstat::L4_OK)
            }),
        ];
        for (name, why, mk) in cases {
            let mut r = Run::new();
            r.ok(&plain(0, MSS));
            let (f, st) = mk();
            r.push(&f, st);
            assert_eq!(r.out.len(), 2, "{name}: queue flushed, packet delivered");
            assert_eq!(r.out[1].0, f, "{name}: packet bypasses untouched");
            assert_eq!(
                r.c.tally.count(why),
                2,
                "{name}: the queue flush and the bypass"
            );
            assert!(r.c.is_empty(), "{name}");
        }
    }

    #[test]
    fn changed_ack_does_not_merge() {
        let mut r = Run::new();
        r.ok(&plain(0, MSS));
        let other = seg(MSS as u32, MSS, 40000, |t| t.acknowledgment_number = 10);
        r.ok(&other);
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.c.tally.count(Reason::Mismatch), 1);
        r.idle();
        assert_eq!(r.out[1].0, other);
    }

    #[test]
    fn full_table_flushes_the_oldest() {
        let mut r = Run::with(Params {
            max_flows: 2,
            ..Params::default()
        });
        r.ok(&seg(0, MSS, 1, |_| {}));
        r.now += Duration::from_micros(1);
        r.ok(&seg(0, MSS, 2, |_| {}));
        r.now += Duration::from_micros(1);
        r.ok(&seg(0, MSS, 3, |_| {}));
        assert_eq!(r.out.len(), 1);
        assert_eq!(
            &r.out[0].0[34..36],
            &1u16.to_be_bytes(),
            "flow 1 was the oldest"
        );
        assert_eq!(r.c.tally.count(Reason::TableFull), 1);
    }

    #[test]
    fn same_five_tuple_on_another_vlan_or_mac_is_another_flow() {
        let mut r = Run::new();
        let a = plain(0, MSS);
        // The next segment of the same addresses and ports, but 802.1Q-tagged.
        let mut tagged = plain(MSS as u32, MSS);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        // And one from another source MAC.
        let mut other_mac = plain(MSS as u32, MSS);
        other_mac[11] ^= 0x40;
        r.ok(&a);
        r.ok(&tagged);
        r.ok(&other_mac);
        r.idle();
        assert_eq!(r.c.tally.merged, 0, "three flows, nothing merged");
        assert_eq!(r.out.len(), 3);
        for f in [&a, &tagged, &other_mac] {
            assert!(
                r.out.iter().any(|(o, _)| o == f),
                "each goes out as it came"
            );
        }
    }

    #[test]
    fn non_tcp_and_garbage_pass_through() {
        let mut r = Run::new();
        r.ok(&[0u8; 20]);
        let mut udp = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(1, 2)
            .write(&mut udp, &[1, 2, 3])
            .unwrap();
        r.ok(&udp);
        assert_eq!(r.out.len(), 2);
        assert_eq!(r.out[1].0, udp);
    }
}
