//! The receive coalescer (`coalesce::Coalescer`) on arbitrary frame
//! sequences: TCP segments of a few flows with fuzzed sequence numbers,
//! flags, lengths and checksum verdicts, mixed with raw and patched frames,
//! and time steps that trigger timeouts.
//!
//! Checked:
//! - no panic;
//! - conservation: every frame pushed is delivered exactly once, alone or
//!   inside one superpacket (deliveries + merged == pushes, and the payload
//!   bytes out equal the payload bytes in);
//! - a frame that was not merged goes out as it came (less any Ethernet
//!   padding past its IP length);
//! - a superpacket parses (etherparse), its IPv4 header checksum verifies,
//!   its IP length covers the frame exactly, and its payload is the flow's
//!   bytes from its first sequence number on (segment payloads are a pure
//!   function of flow and sequence number, so out-of-order merging or a
//!   wrong append shows up as wrong bytes);
//! - gso_size/gso_segs describe the payload: (segs-1)*size < len <= segs*size;
//! - the queue is empty after `flush_all`.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vmso_device::abi::rxstat;
use vmso_device::engine::coalesce::{Coalescer, Params, Reason};
use vmso_device::engine::verdict::{self, RxMeta};
use vmso_fuzz::{fix_checksums, ip_view, patch, HdrSpec};

#[derive(Arbitrary, Debug)]
enum Step {
    /// A segment of flow `flow % 4` starting at `seq`, `len` payload bytes.
    Seg {
        flow: u8,
        seq: u16,
        len: u16,
        flags: u8,
        ack: u8,
        status: Status,
        lie: Option<(u16, u8)>,
    },
    /// Arbitrary bytes.
    Raw(Vec<u8>, Status),
    /// Time passes, then expired queues are flushed.
    Tick(u16),
    /// The backend ran dry.
    Idle,
}

/// The checksum verdict: what `verdict::verify_checksums` says about the bytes,
/// with the bits of this mask cleared. Bits are only ever taken away: the
/// coalescer may trust L4_OK, as the RX path only sets it for verified bytes.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Status(u16);

#[derive(Arbitrary, Debug)]
struct Input {
    /// Flow shapes: IPv4/IPv6, VLAN, TCP options.
    flows: [HdrSpec; 4],
    max_segs: u8,
    max_flows: u8,
    max_bytes: u16,
    /// Flows 2 and 3 copy the addresses, sequence numbers, ACK, window and
    /// option lengths of flows 0 and 1: only VLAN, IP version and MAC differ.
    twins: bool,
    steps: Vec<Step>,
}

/// Last byte of the source MAC of flow i: FLOW_MAC + i.
const FLOW_MAC: u8 = 0x10;

/// The flow a frame belongs to, by its source MAC.
fn flow_of(f: &[u8]) -> Option<usize> {
    let b = *f.get(11)?;
    (FLOW_MAC..FLOW_MAC + 4)
        .contains(&b)
        .then(|| usize::from(b - FLOW_MAC))
}

/// Payload byte at sequence number `s` of flow `f`.
fn byte(f: usize, s: u32) -> u8 {
    (s.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (f as u8).wrapping_mul(97)
}

/// TCP payload length the coalescer would see (0 for non-TCP or invalid).
fn tcp_payload(frame: &[u8]) -> usize {
    match vmso_device::engine::wire::parse(frame) {
        Ok(h) if h.l4 == vmso_device::engine::wire::L4::Tcp => {
            let end = h.l3_off + h.ip_len;
            if end <= frame.len() && end >= h.hdr_len {
                end - h.hdr_len
            } else {
                0
            }
        }
        _ => 0,
    }
}

struct Out {
    delivered: Vec<(Vec<u8>, RxMeta)>,
}

fuzz_target!(|inp: Input| {
    let d = Params::default();
    let params = Params {
        max_segs: 1 + u16::from(inp.max_segs) % d.max_segs,
        max_bytes: 1 + usize::from(inp.max_bytes) % d.max_bytes,
        timeout: d.timeout,
        max_flows: 1 + usize::from(inp.max_flows) % 16,
    };
    let mut c = Coalescer::new(params);
    let mut now = Instant::now();
    let mut out = Out {
        delivered: Vec::new(),
    };
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    let mut flows = inp.flows.clone();
    for (i, f) in flows.iter_mut().enumerate() {
        // Flows 0 and 2 (and 1 and 3) share their ports: with equal
        // addresses they differ only in what the fuzzer chose for VLAN, IP
        // version or source MAC, and must still not be merged.
        f.sport = 1000 + (i & 1) as u16;
        f.ip_len_lie = None;
        f.frag = None;
    }
    if inp.twins {
        for i in 2..4 {
            let (a, b) = flows.split_at_mut(2);
            let (t, o) = (&mut b[i - 2], &a[i - 2]);
            (t.src, t.dst, t.seq, t.ack, t.win) = (o.src, o.dst, o.seq, o.ack, o.win);
            (t.dport, t.tcp_opt_words, t.ip_opt_words) = (o.dport, o.tcp_opt_words, o.ip_opt_words);
        }
    }
    for step in inp.steps.iter().take(256) {
        let mut deliver = |b: &[u8], m: RxMeta| out.delivered.push((b.to_vec(), m));
        match step {
            Step::Seg {
                flow,
                seq,
                len,
                flags,
                ack,
                status,
                lie,
            } => {
                let fi = usize::from(*flow % 4);
                let mut h = flows[fi].clone();
                let seq = h.seq.wrapping_add(u32::from(*seq));
                h.seq = seq;
                h.ack = h.ack.wrapping_add(u32::from(*ack & 1));
                h.tcp_flags = *flags;
                h.udp = false;
                let n = usize::from(*len) % 3000;
                let mut f = h.build(n);
                f[11] = FLOW_MAC + fi as u8; // the flow's source MAC
                f.extend((0..n).map(|k| byte(fi, seq.wrapping_add(k as u32))));
                if let Some((pos, x)) = lie {
                    patch(&mut f, &[(*pos, *x)]);
                }
                fix_checksums(&mut f);
                let st = status_of(*status, &f);
                c.push(&f, st, now, &mut deliver);
                pushed.push(f);
            }
            Step::Raw(b, status) => {
                let st = status_of(*status, b);
                c.push(b, st, now, &mut deliver);
                pushed.push(b.clone());
            }
            Step::Tick(us) => {
                now += Duration::from_micros(u64::from(*us));
                c.flush_expired(now, &mut deliver);
            }
            Step::Idle => c.flush_all(Reason::Idle, &mut deliver),
        }
    }
    c.flush_all(Reason::Idle, &mut |b, m| {
        out.delivered.push((b.to_vec(), m))
    });
    assert!(c.is_empty());

    // Conservation.
    assert_eq!(
        out.delivered.len() as u64 + c.tally.merged,
        pushed.len() as u64,
        "every frame delivered once, alone or merged"
    );
    let bytes_in: usize = pushed.iter().map(|f| tcp_payload(f)).sum();
    let bytes_out: usize = out.delivered.iter().map(|(f, _)| tcp_payload(f)).sum();
    assert_eq!(bytes_in, bytes_out, "payload bytes in == out");

    for (f, m) in &out.delivered {
        if m.status & rxstat::COALESCED == 0 {
            // Alone: one of the frames pushed, unchanged but for Ethernet
            // padding past the IP length, which a lone queued segment loses.
            assert!(
                pushed.iter().any(|p| p.starts_with(f)),
                "a lone frame goes out unchanged"
            );
            continue;
        }
        assert!(m.gso_segs >= 2 && m.gso_size > 0, "{m:?}");
        let ip = ip_view(f).expect("superpacket parses");
        assert_eq!(ip.l3_end(), f.len(), "IP length covers the superpacket");
        assert!(ip.ipv4_csum_ok, "IPv4 header checksum of a superpacket");
        let l4 = ip.l4_off();
        let hdr_len = l4 + usize::from(f[l4 + 12] >> 4) * 4;
        let payload = &f[hdr_len..];
        let (size, segs) = (usize::from(m.gso_size), usize::from(m.gso_segs));
        assert!(
            (segs - 1) * size < payload.len() && payload.len() <= segs * size,
            "gso {size}x{segs} for {} bytes",
            payload.len()
        );
        assert!(payload.len() <= params.max_bytes, "over max_bytes");
        assert!(segs <= usize::from(params.max_segs), "over max_segs");
        // Which flow: by source MAC.
        let Some(fi) = flow_of(f) else {
            // A raw frame that happened to merge with another raw frame:
            // content cannot be predicted, the counts above still hold.
            continue;
        };
        let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]]);
        let lied = pushed.iter().any(|p| !segment_like(p));
        for (k, &b) in payload.iter().enumerate() {
            if b != byte(fi, seq.wrapping_add(k as u32)) && !lied {
                panic!("superpacket byte {k} of flow {fi} at seq {seq:#x} is wrong");
            }
        }
    }
});

/// True if `f` is one of our unpatched segments (its payload is the
/// pattern); patched and raw frames may carry other bytes.
fn segment_like(f: &[u8]) -> bool {
    let Ok(h) = vmso_device::engine::wire::parse(f) else {
        return true; // never merged
    };
    let Some(fi) = flow_of(f) else {
        return true;
    };
    let l4 = h.l4_off;
    let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]]);
    f[h.hdr_len.min(f.len())..]
        .iter()
        .enumerate()
        .all(|(k, &b)| b == byte(fi, seq.wrapping_add(k as u32)))
}

fn status_of(s: Status, f: &[u8]) -> u16 {
    verdict::verify_checksums(f) & !s.0
}
