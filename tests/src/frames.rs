//! Frame templates and independent checks, both through etherparse: the
//! device's own parser and checksum code are never used to judge it.

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetHeaders,
    PacketHeaders, TcpHeader, TransportHeader, UdpHeader,
};

pub const SRC_MAC: [u8; 6] = [0x52, 0x54, 0, 0x76, 0x6d, 1];
pub const DST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x76, 0x6d, 2];
pub const SRC4: [u8; 4] = [198, 18, 0, 2];
pub const DST4: [u8; 4] = [198, 18, 0, 1];
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const IP_ID: u16 = 0x4321;
pub const SEQ: u32 = 0xfff0_0000; // wraps during a 64 KiB send

#[derive(Clone, Copy, Debug, Default)]
pub struct TcpOpts {
    pub v6: bool,
    pub ip_options: bool,
    pub tcp_options: bool,
    pub fin: bool,
    pub psh: bool,
    pub cwr: bool,
}

fn eth(v6: bool, out: &mut Vec<u8>) {
    Ethernet2Header {
        source: SRC_MAC,
        destination: DST_MAC,
        ether_type: if v6 { EtherType::IPV6 } else { EtherType::IPV4 },
    }
    .write(out)
    .unwrap();
}

fn ip(v6: bool, options: bool, proto: IpNumber, payload_len: u16, out: &mut Vec<u8>) {
    if v6 {
        Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: payload_len,
            next_header: proto,
            hop_limit: 64,
            source: SRC6,
            destination: DST6,
        }
        .write(out)
        .unwrap();
    } else {
        let mut h = Ipv4Header::new(payload_len, 64, proto, SRC4, DST4).unwrap();
        h.identification = IP_ID;
        if options {
            // Two NOPs, then a 6-byte experimental option: 8 bytes in all.
            h.options = [1u8, 1, 0x9e, 6, 1, 2, 3, 4][..].try_into().unwrap();
        }
        h.write(out).unwrap();
    }
}

/// Ethernet + IP + TCP template header, as a kernel would hand it to a TSO NIC.
pub fn tcp_template(o: TcpOpts) -> Vec<u8> {
    let mut t = TcpHeader::new(40000, 5201, SEQ, 512);
    t.ack = true;
    t.acknowledgment_number = 77;
    t.fin = o.fin;
    t.psh = o.psh;
    t.cwr = o.cwr;
    if o.tcp_options {
        // NOP, NOP, timestamps (10 bytes): 12 bytes.
        t.set_options_raw(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
            .unwrap();
    }
    let mut v = Vec::new();
    eth(o.v6, &mut v);
    ip(
        o.v6,
        o.ip_options,
        IpNumber::TCP,
        t.header_len() as u16,
        &mut v,
    );
    t.write(&mut v).unwrap();
    v
}

/// Ethernet + IP + UDP template header.
pub fn udp_template(v6: bool) -> Vec<u8> {
    let u = UdpHeader {
        source_port: 40001,
        destination_port: 5201,
        length: 8,
        checksum: 0,
    };
    let mut v = Vec::new();
    eth(v6, &mut v);
    ip(v6, false, IpNumber::UDP, 8, &mut v);
    u.write(&mut v).unwrap();
    v
}

/// Checks TSO output: every segment ≤ MSS and ≤ MTU, contiguous sequence
/// numbers, valid checksums, per-segment IP ID and flags, and a byte-exact
/// reassembly of `payload`.
pub fn check_tso(frames: &[Vec<u8>], payload: &[u8], mss: usize, o: TcpOpts) {
    assert!(!frames.is_empty(), "no frames");
    assert_eq!(frames.len(), payload.len().div_ceil(mss), "segment count");
    let mut got = Vec::new();
    let n = frames.len();
    for (i, f) in frames.iter().enumerate() {
        assert!(
            f.len() <= 1514,
            "frame {i} is {} bytes, over the MTU",
            f.len()
        );
        let p = PacketHeaders::from_ethernet_slice(f).expect("etherparse accepts the frame");
        let data = p.payload.slice();
        assert!(
            data.len() <= mss,
            "segment {i} carries {} > MSS {mss}",
            data.len()
        );
        let Some(TransportHeader::Tcp(t)) = p.transport else {
            panic!("frame {i} is not TCP")
        };
        // Each IP version's own checks; then its length field and the TCP
        // checksum over its pseudo-header, checked alike.
        let (len_field, ip_len, want_len, tcp_csum) = match p.net {
            Some(NetHeaders::Ipv4(h, _)) => {
                assert!(!o.v6);
                assert_eq!(
                    h.header_checksum,
                    h.calc_header_checksum(),
                    "IPv4 header checksum, segment {i}"
                );
                assert_eq!(
                    h.identification,
                    IP_ID.wrapping_add(i as u16),
                    "IP ID, segment {i}"
                );
                let csum = t.calc_checksum_ipv4(&h, data).unwrap();
                ("IPv4 total length", h.total_len, f.len() - 14, csum)
            }
            Some(NetHeaders::Ipv6(h, _)) => {
                assert!(o.v6);
                let csum = t.calc_checksum_ipv6(&h, data).unwrap();
                ("IPv6 payload length", h.payload_length, f.len() - 54, csum)
            }
            _ => panic!("frame {i}: no IP header"),
        };
        assert_eq!(usize::from(ip_len), want_len, "{len_field}, segment {i}");
        assert_eq!(t.checksum, tcp_csum, "TCP checksum, segment {i}");
        assert_eq!(
            t.sequence_number,
            SEQ.wrapping_add(got.len() as u32),
            "sequence of segment {i}"
        );
        let last = i + 1 == n;
        assert_eq!(t.fin, o.fin && last, "FIN on segment {i}");
        assert_eq!(t.psh, o.psh && last, "PSH on segment {i}");
        assert_eq!(t.cwr, o.cwr && i == 0, "CWR on segment {i}");
        assert!(t.ack && t.acknowledgment_number == 77);
        assert_eq!(t.options.len(), if o.tcp_options { 12 } else { 0 });
        got.extend_from_slice(data);
    }
    assert!(
        got == payload,
        "reassembled payload differs from what was sent"
    );
}

/// Checks a single TCP or UDP frame's checksums; returns its payload.
pub fn check_l4(frame: &[u8]) -> Vec<u8> {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse accepts the frame");
    let data = p.payload.slice();
    match (&p.net, &p.transport) {
        (Some(NetHeaders::Ipv4(h, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(t.checksum, t.calc_checksum_ipv4(h, data).unwrap());
        }
        (Some(NetHeaders::Ipv4(h, _)), Some(TransportHeader::Udp(u))) => {
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(usize::from(u.length), 8 + data.len());
            assert_eq!(u.checksum, u.calc_checksum_ipv4(h, data).unwrap());
        }
        (Some(NetHeaders::Ipv6(h, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(t.checksum, t.calc_checksum_ipv6(h, data).unwrap());
        }
        (Some(NetHeaders::Ipv6(h, _)), Some(TransportHeader::Udp(u))) => {
            assert_eq!(usize::from(u.length), 8 + data.len());
            assert_eq!(u.checksum, u.calc_checksum_ipv6(h, data).unwrap());
        }
        other => panic!("not TCP/UDP over IP: {other:?}"),
    }
    data.to_vec()
}

/// Reassembles IPv4 fragments (UFO output) and checks every IP header and
/// the UDP checksum of the whole datagram; returns the UDP payload.
pub fn reassemble_ufo(frames: &[Vec<u8>], max_frag: usize) -> Vec<u8> {
    let mut l3 = Vec::new();
    let mut id = None;
    for (i, f) in frames.iter().enumerate() {
        assert!(f.len() <= 1514);
        let (h, rest) = Ipv4Header::from_slice(&f[14..]).expect("IPv4 header");
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "fragment {i} header checksum"
        );
        let data = &rest[..usize::from(h.total_len) - h.header_len()];
        assert!(data.len() <= max_frag);
        let off = usize::from(h.fragment_offset.value()) * 8;
        assert_eq!(off, l3.len(), "fragment {i} offset");
        assert_eq!(
            h.more_fragments,
            i + 1 != frames.len(),
            "MF on fragment {i}"
        );
        assert!(!h.dont_fragment);
        assert_eq!(
            *id.get_or_insert(h.identification),
            h.identification,
            "same ID on every fragment"
        );
        if i + 1 != frames.len() {
            assert_eq!(data.len() % 8, 0);
        }
        l3.extend_from_slice(data);
    }
    let (u, payload) = UdpHeader::from_slice(&l3).expect("UDP header in the first fragment");
    assert_eq!(usize::from(u.length), l3.len());
    assert_eq!(
        u.checksum,
        u.calc_checksum_ipv4_raw(SRC4, DST4, payload).unwrap(),
        "UDP checksum over the datagram"
    );
    payload.to_vec()
}
