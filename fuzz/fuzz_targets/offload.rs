//! The offload engine (`offload::process`) on arbitrary headers, payloads,
//! slice splits and Request fields.
//!
//! Checked, independently of the engine's own parser and checksum code
//! (etherparse for the IP headers, a byte-wise RFC 1071 sum for checksums):
//! - no panic, and no read outside the slices (each slice is its own heap
//!   allocation, so AddressSanitizer sees an over-read);
//! - every frame is at most MTU + 14 bytes (+ 4 with an 802.1Q tag), except
//!   that docs/abi.md lets a frame without offload bits be MTU + 18 bytes
//!   long even when untagged;
//! - `Emitted` counts exactly what reached the sink;
//! - without offloads the frame goes out byte for byte;
//! - checksum-only: the IPv4 header and L4 checksums verify as requested;
//! - TSO/USO: ceil(payload / MSS) frames whose checksums verify, whose
//!   payloads concatenate to the input payload, with TCP sequence numbers
//!   advancing by the bytes before them;
//! - UFO: IPv4 fragments whose header checksums verify, contiguous offsets,
//!   MF on all but the last, reassembling to a UDP datagram whose checksum
//!   verifies and whose data is the input's.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vmso_device::abi::{TxError, MTU_MAX, MTU_MIN};
use vmso_device::engine::offload::{self, Request, FrameSink, Slice, Stream};
use vmso_fuzz::{ip_view, l4_verifies, patch, ref_sum, verifies, FrameSpec};

#[derive(Arbitrary, Debug)]
struct Input {
    frame: FrameSpec,
    patches: Vec<(u16, u8)>,
    /// Slice boundaries (taken mod the frame length + 1).
    splits: Vec<u16>,
    tso: bool,
    uso: bool,
    ufo: bool,
    ip_csum: bool,
    l4_csum: bool,
    snapshot: bool,
    mss: u16,
    /// Mapped into MTU_MIN..=MTU_MAX, the range the device accepts.
    mtu: u16,
}

/// Payloads are capped so that one input cannot take seconds (MSS 1).
const MAX_PAYLOAD: usize = 9000;

struct Collect {
    max_untagged: usize,
    /// docs/abi.md: a packet without offload bits is sent as it is unless it
    /// is longer than MTU + 18, tagged or not.
    passthrough: bool,
    frames: Vec<Vec<u8>>,
}

impl FrameSink for Collect {
    fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool {
        let mut f = header.to_vec();
        for s in payload {
            // SAFETY: the slices point into the fuzz input's buffers (or the
            // engine's snapshot copy), alive for the whole `process` call.
            f.extend_from_slice(unsafe { std::slice::from_raw_parts(s.ptr, s.len) });
        }
        let tagged = f.len() >= 14 && f[12..14] == [0x81, 0x00];
        let max = self.max_untagged + if tagged || self.passthrough { 4 } else { 0 };
        assert!(
            f.len() <= max,
            "frame of {} bytes over MTU+14 ({max}, tagged {tagged})",
            f.len()
        );
        self.frames.push(f);
        true
    }
}

fuzz_target!(|inp: Input| {
    let mut pkt = inp.frame.bytes(MAX_PAYLOAD);
    patch(&mut pkt, &inp.patches);
    if pkt.len() > 80_000 {
        return;
    }
    // Cut the packet into slices, each in its own allocation.
    let mut cuts: Vec<usize> = inp
        .splits
        .iter()
        .take(64)
        .map(|&c| usize::from(c) % (pkt.len() + 1))
        .collect();
    cuts.push(0);
    cuts.push(pkt.len());
    cuts.sort_unstable();
    let bufs: Vec<Vec<u8>> = cuts.windows(2).map(|w| pkt[w[0]..w[1]].to_vec()).collect();
    let slices: Vec<Slice> = bufs.iter().map(|b| Slice::from_bytes(b)).collect();
    // SAFETY: every slice points into `bufs`, alive until the end of this closure.
    let stream = unsafe { Stream::new(&slices) };
    assert_eq!(stream.len(), pkt.len());

    let mtu = MTU_MIN + u32::from(inp.mtu) % (MTU_MAX - MTU_MIN + 1);
    let req = Request {
        tso: inp.tso,
        uso: inp.uso,
        ufo: inp.ufo,
        ip_csum: inp.ip_csum,
        l4_csum: inp.l4_csum,
        snapshot: inp.snapshot,
        mss: inp.mss,
        mtu,
    };
    let segmenting = req.tso || req.uso || req.ufo;
    let mut sink = Collect {
        max_untagged: mtu as usize + 14,
        passthrough: !segmenting && !req.ip_csum && !req.l4_csum,
        frames: Vec::new(),
    };
    let res = offload::process(&stream, &req, &mut sink);
    let frames = sink.frames;
    let em = match res {
        Ok(em) => em,
        Err(e) => {
            assert_ne!(e, TxError::Backend, "the sink never refuses");
            assert!(frames.is_empty(), "{e:?} after {} frames", frames.len());
            return;
        }
    };
    assert_eq!(em.frames, frames.len() as u64);
    assert_eq!(em.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());

    if !segmenting && !req.ip_csum && !req.l4_csum {
        assert_eq!(frames, [pkt], "pass-through must not change the frame");
        return;
    }
    // The engine accepted the headers: etherparse must accept them too.
    let ip_in = ip_view_prefix(&pkt).expect("offloaded a frame etherparse cannot parse");
    let hdr_len = l4_hdr_end(&pkt, &ip_in);
    if !segmenting {
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(f.len(), pkt.len());
        assert_eq!(f[hdr_len..], pkt[hdr_len..], "payload changed");
        let ip = ip_view(f).expect("checksummed frame parses");
        if req.ip_csum && !ip.v6 {
            assert!(ip.ipv4_csum_ok, "IPv4 header checksum");
        }
        if req.l4_csum {
            assert!(
                l4_verifies(&ip, &f[ip.l4_off()..ip.l3_end()]),
                "L4 checksum"
            );
        }
        return;
    }
    let payload = &pkt[hdr_len..];
    if req.ufo {
        check_ufo(&frames, &pkt, &ip_in, hdr_len, payload);
        return;
    }
    // TSO / USO.
    let mss = usize::from(req.mss);
    assert_eq!(frames.len(), payload.len().div_ceil(mss), "segment count");
    let seq0 = (ip_in.proto == 6).then(|| be32(&pkt, ip_in.l4_off() + 4));
    let mut at = 0usize;
    for f in &frames {
        let ip = ip_view(f).expect("segment parses");
        assert_eq!(ip.l3_end(), f.len(), "IP length covers the frame");
        assert!(ip.ipv4_csum_ok, "IPv4 header checksum of a segment");
        assert!(
            l4_verifies(&ip, &f[ip.l4_off()..]),
            "L4 checksum of a segment"
        );
        assert_eq!(f[..ip.l3_off], pkt[..ip.l3_off]);
        let data = &f[hdr_len..];
        assert!(data.len() <= mss && !data.is_empty());
        assert_eq!(data, &payload[at..at + data.len()], "segment payload");
        if let Some(seq0) = seq0 {
            let seq = be32(f, ip.l4_off() + 4);
            assert_eq!(seq, seq0.wrapping_add(at as u32), "TCP sequence");
        } else {
            assert_eq!(
                usize::from(be16(f, ip.l4_off() + 4)),
                8 + data.len(),
                "UDP length"
            );
        }
        at += data.len();
    }
    assert_eq!(at, payload.len(), "all payload sent");
});

fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Like `ip_view`, but does not require the claimed L3 length to be inside
/// the bytes (the segmenters rewrite it).
fn ip_view_prefix(pkt: &[u8]) -> Option<vmso_fuzz::IpView> {
    let mut f = pkt.to_vec();
    // Give etherparse a frame whose length field it can accept: the engine
    // only requires the headers, the lengths are rewritten.
    let l3 = if f.len() >= 14 && f[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    if f.len() < l3 + 1 {
        return None;
    }
    let l3_len = f.len() - l3;
    if f[l3] >> 4 == 4 && f.len() >= l3 + 4 {
        f[l3 + 2..l3 + 4].copy_from_slice(&(l3_len.min(0xffff) as u16).to_be_bytes());
    } else if f[l3] >> 4 == 6 && f.len() >= l3 + 6 {
        f[l3 + 4..l3 + 6]
            .copy_from_slice(&(l3_len.saturating_sub(40).min(0xffff) as u16).to_be_bytes());
    }
    ip_view(&f)
}

/// End of the L4 header (TCP data offset, or 8 for UDP).
fn l4_hdr_end(pkt: &[u8], ip: &vmso_fuzz::IpView) -> usize {
    let l4 = ip.l4_off();
    match ip.proto {
        6 => l4 + usize::from(pkt[l4 + 12] >> 4) * 4,
        17 => l4 + 8,
        p => panic!("offloaded L4 protocol {p}"),
    }
}

fn check_ufo(
    frames: &[Vec<u8>],
    pkt: &[u8],
    ip_in: &vmso_fuzz::IpView,
    hdr_len: usize,
    payload: &[u8],
) {
    assert!(!ip_in.v6 && ip_in.proto == 17, "UFO is IPv4/UDP only");
    let mut dgram = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let ip = ip_view(f).expect("fragment parses");
        assert_eq!(ip.l3_end(), f.len(), "IP length covers the fragment");
        assert!(ip.ipv4_csum_ok, "IPv4 header checksum of a fragment");
        assert_eq!(ip.frag_off, dgram.len(), "fragment offsets are contiguous");
        assert_eq!(ip.mf, i + 1 != frames.len(), "MF on all but the last");
        assert_eq!(ip.id, ip_in.id, "one datagram, one IP id");
        let data = &f[ip.l4_off()..];
        assert!(i + 1 == frames.len() || data.len() % 8 == 0);
        dgram.extend_from_slice(data);
    }
    let udp_len = pkt.len() - ip_in.l4_off();
    assert_eq!(dgram.len(), udp_len, "reassembles to the whole datagram");
    assert_eq!(usize::from(be16(&dgram, 4)), udp_len, "UDP length");
    assert_eq!(
        &dgram[..4],
        &pkt[ip_in.l4_off()..ip_in.l4_off() + 4],
        "ports"
    );
    assert_eq!(&dgram[hdr_len - ip_in.l4_off()..], payload, "datagram data");
    let sum = vmso_fuzz::ref_pseudo(&ip_in.src, &ip_in.dst, 17, udp_len as u32) + ref_sum(&dgram);
    assert!(
        verifies(sum) && dgram[6..8] != [0, 0],
        "UDP checksum of the datagram"
    );
}
