//! Shared pieces of the vmso fuzz targets: a structured frame builder (so
//! the fuzzer reaches the offload paths instead of dying in the parser), an
//! independent RFC 1071 checksum, and an etherparse-based view of a frame's
//! IP layer. Nothing here uses the device crate's own parser or checksum code:
//! a target that checked the engine with the engine's code would prove nothing.

use arbitrary::Arbitrary;

/// RFC 1071 one's-complement sum of `data` as big-endian 16-bit words (an odd
/// tail byte is padded with zero), not yet folded. Byte by byte, on purpose:
/// it shares nothing with the device's word-at-a-time loop.
pub fn ref_sum(data: &[u8]) -> u64 {
    let mut s = 0u64;
    for c in data.chunks(2) {
        let hi = u64::from(c[0]) << 8;
        let lo = c.get(1).copied().map_or(0, u64::from);
        s += hi | lo;
    }
    s
}

pub fn ref_fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// True if `sum` (a sum over data that includes its checksum field) verifies.
pub fn verifies(sum: u64) -> bool {
    ref_fold(sum) == 0xffff
}

/// Pseudo-header sum for TCP/UDP.
pub fn ref_pseudo(src: &[u8], dst: &[u8], proto: u8, len: u32) -> u64 {
    let mut t = Vec::with_capacity(40);
    t.extend_from_slice(src);
    t.extend_from_slice(dst);
    t.extend_from_slice(&len.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, proto]);
    ref_sum(&t)
}

/// The IP layer of a frame, as etherparse sees it.
#[derive(Debug, Clone)]
pub struct IpView {
    pub l3_off: usize,
    pub v6: bool,
    pub src: Vec<u8>,
    pub dst: Vec<u8>,
    pub proto: u8,
    /// IP header length (IPv4 IHL*4, or 40).
    pub ihl: usize,
    /// L3 length the header claims (IPv4 total length, IPv6 40 + payload length).
    pub l3_len: usize,
    pub ipv4_csum_ok: bool,
    pub mf: bool,
    /// IPv4 fragment offset in bytes.
    pub frag_off: usize,
    pub id: u16,
}

impl IpView {
    /// Frame offset where the L4 bytes start.
    pub fn l4_off(&self) -> usize {
        self.l3_off + self.ihl
    }
    /// Frame offset where the L3 packet ends.
    pub fn l3_end(&self) -> usize {
        self.l3_off + self.l3_len
    }
    pub fn is_fragment(&self) -> bool {
        self.mf || self.frag_off != 0
    }
}

/// Parses Ethernet (+ one 802.1Q tag) and the IP header with etherparse.
/// `None` if etherparse rejects it or the claimed L3 length is not inside
/// the frame.
pub fn ip_view(frame: &[u8]) -> Option<IpView> {
    let eth = etherparse::Ethernet2HeaderSlice::from_slice(frame).ok()?;
    let mut l3_off = 14;
    let mut et = eth.ether_type();
    if et == etherparse::EtherType::VLAN_TAGGED_FRAME {
        let v = etherparse::SingleVlanHeaderSlice::from_slice(&frame[14..]).ok()?;
        et = v.ether_type();
        l3_off += 4;
    }
    let ip = &frame[l3_off..];
    let view = if et == etherparse::EtherType::IPV4 {
        let h = etherparse::Ipv4HeaderSlice::from_slice(ip).ok()?;
        let hdr = h.to_header();
        IpView {
            l3_off,
            v6: false,
            src: h.source().to_vec(),
            dst: h.destination().to_vec(),
            proto: h.protocol().0,
            ihl: usize::from(h.ihl()) * 4,
            l3_len: usize::from(h.total_len()),
            ipv4_csum_ok: hdr.calc_header_checksum() == h.header_checksum(),
            mf: h.more_fragments(),
            frag_off: usize::from(h.fragments_offset().value()) * 8,
            id: h.identification(),
        }
    } else if et == etherparse::EtherType::IPV6 {
        let h = etherparse::Ipv6HeaderSlice::from_slice(ip).ok()?;
        IpView {
            l3_off,
            v6: true,
            src: h.source().to_vec(),
            dst: h.destination().to_vec(),
            proto: h.next_header().0,
            ihl: 40,
            l3_len: 40 + usize::from(h.payload_length()),
            ipv4_csum_ok: true,
            mf: false,
            frag_off: 0,
            id: 0,
        }
    } else {
        return None;
    };
    if view.l3_end() > frame.len() || view.l3_len < view.ihl {
        return None;
    }
    Some(view)
}

/// True if the L4 checksum of `l4` (the whole L4 packet: header and data)
/// verifies against the pseudo-header of `ip`.
pub fn l4_verifies(ip: &IpView, l4: &[u8]) -> bool {
    let sum = ref_pseudo(&ip.src, &ip.dst, ip.proto, l4.len() as u32) + ref_sum(l4);
    if ip.proto == 17 && l4.len() >= 8 && l4[6] == 0 && l4[7] == 0 {
        return false; // a computed UDP checksum is never sent as 0
    }
    verifies(sum)
}

/// Recomputes the IPv4 header checksum and the TCP/UDP checksum of `f` in
/// place (with the reference sum), if etherparse can parse its IP layer and
/// the L4 header is inside the IP length. Returns whether it did.
pub fn fix_checksums(f: &mut [u8]) -> bool {
    let Some(ip) = ip_view(f) else {
        return false;
    };
    if !ip.v6 {
        let o = ip.l3_off;
        f[o + 10..o + 12].fill(0);
        let c = !ref_fold(ref_sum(&f[o..o + ip.ihl]));
        f[o + 10..o + 12].copy_from_slice(&c.to_be_bytes());
    }
    let co = match ip.proto {
        6 => 16,
        17 => 6,
        _ => return true,
    };
    let (l4, end) = (ip.l4_off(), ip.l3_end());
    if ip.is_fragment() || end < l4 + co + 2 {
        return true;
    }
    f[l4 + co..l4 + co + 2].fill(0);
    let sum = ref_pseudo(&ip.src, &ip.dst, ip.proto, (end - l4) as u32) + ref_sum(&f[l4..end]);
    let mut c = !ref_fold(sum);
    if ip.proto == 17 && c == 0 {
        c = 0xffff;
    }
    f[l4 + co..l4 + co + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// A structurally valid (or deliberately lying) Ethernet/IP/TCP-or-UDP
/// header, so that the fuzzer reaches the offload and coalescing logic.
#[derive(Arbitrary, Debug, Clone)]
pub struct HdrSpec {
    pub vlan: bool,
    pub v6: bool,
    pub udp: bool,
    /// IPv4 option words (taken mod 11).
    pub ip_opt_words: u8,
    /// TCP option words (taken mod 11).
    pub tcp_opt_words: u8,
    /// Added to the correct IP length field when `Some`: a lie.
    pub ip_len_lie: Option<i16>,
    /// Raw IPv4 flags/fragment-offset field when `Some` (else DF).
    pub frag: Option<u16>,
    pub id: u16,
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub win: u16,
    pub sport: u16,
    pub dport: u16,
    /// Low byte of the source and destination addresses (198.18.x.y).
    pub src: u8,
    pub dst: u8,
}

impl HdrSpec {
    /// Builds the header bytes for `payload_len` bytes of payload.
    pub fn build(&self, payload_len: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        if self.vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        let ip_opts = usize::from(self.ip_opt_words % 11) * 4;
        let tcp_opts = usize::from(self.tcp_opt_words % 11) * 4;
        let l4_len = if self.udp { 8 } else { 20 + tcp_opts } + payload_len;
        let proto = if self.udp { 17 } else { 6 };
        let lie = |n: usize| -> u16 {
            let n = n as i64 + self.ip_len_lie.map_or(0, i64::from);
            n.clamp(0, 0xffff) as u16
        };
        if self.v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&lie(l4_len).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            f.push(self.src);
            f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            f.push(self.dst);
        } else {
            let tot = lie(20 + ip_opts + l4_len);
            f.extend_from_slice(&[0x08, 0x00, 0x45 + (ip_opts / 4) as u8, 0]);
            f.extend_from_slice(&tot.to_be_bytes());
            f.extend_from_slice(&self.id.to_be_bytes());
            f.extend_from_slice(&self.frag.unwrap_or(0x4000).to_be_bytes());
            f.extend_from_slice(&[64, proto, 0, 0, 198, 18, 0, self.src, 198, 18, 1, self.dst]);
            f.extend(std::iter::repeat_n(1u8, ip_opts)); // NOP options
        }
        f.extend_from_slice(&self.sport.to_be_bytes());
        f.extend_from_slice(&self.dport.to_be_bytes());
        if self.udp {
            f.extend_from_slice(&((8 + payload_len).min(0xffff) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        } else {
            f.extend_from_slice(&self.seq.to_be_bytes());
            f.extend_from_slice(&self.ack.to_be_bytes());
            f.push((((20 + tcp_opts) / 4) as u8) << 4);
            f.push(self.tcp_flags);
            f.extend_from_slice(&self.win.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0]);
            f.extend(std::iter::repeat_n(1u8, tcp_opts));
        }
        f
    }
}

/// A cheap deterministic byte pattern (xorshift), for payloads.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A frame: structured (header spec + payload) or raw bytes, then patched.
#[derive(Arbitrary, Debug, Clone)]
pub enum FrameSpec {
    Built {
        hdr: HdrSpec,
        payload_len: u16,
        seed: u32,
    },
    Raw(Vec<u8>),
}

impl FrameSpec {
    /// The frame bytes; payloads are capped at `max_payload`.
    pub fn bytes(&self, max_payload: usize) -> Vec<u8> {
        match self {
            Self::Built {
                hdr,
                payload_len,
                seed,
            } => {
                let n = usize::from(*payload_len) % (max_payload + 1);
                let mut f = hdr.build(n);
                f.extend_from_slice(&pattern(*seed, n));
                f
            }
            Self::Raw(b) => b.clone(),
        }
    }
}

/// Applies byte patches (position taken mod the length, value XORed in).
pub fn patch(f: &mut [u8], patches: &[(u16, u8)]) {
    if f.is_empty() {
        return;
    }
    for &(pos, x) in patches {
        let n = f.len();
        f[usize::from(pos) % n] ^= x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_checksum_rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ref_fold(ref_sum(&d)), 0xddf2);
    }
}
