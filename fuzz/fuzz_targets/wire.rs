//! The header parser (`wire::parse`) and the header views on arbitrary
//! bytes: parse must never panic, every offset it returns must lie inside
//! the bytes it was given, no view made from its result may panic, and
//! every field the views read must agree with etherparse on every frame
//! both accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmso_device::engine::csum;
use vmso_device::engine::wire::{self, EthernetFrame, IpPacket, L3, L4};
use vmso_fuzz::{ref_fold, ref_pseudo, ref_sum, verifies};

fuzz_target!(|data: &[u8]| {
    // The views' own checks never panic, whatever parse thinks.
    let _ = EthernetFrame::new_checked(data).map(|e| (e.payload_ethertype(), e.vlan_tci()));
    let Ok(h) = wire::parse(data) else {
        return;
    };
    // Offsets are inside the input and ordered.
    assert!(h.l3_off == 14 || h.l3_off == 18, "{h:?}");
    assert!(h.l4_off >= h.l3_off + 20, "{h:?}");
    assert!(h.hdr_len <= data.len(), "{h:?}");
    assert!(h.l4_off + if h.l4 == L4::Tcp { 20 } else { 8 } <= h.hdr_len);
    assert!(h.l4_off + h.l4_csum_offset() + 2 <= h.hdr_len);
    // The views cannot panic on what parse accepted, on the frame or on
    // its first hdr_len bytes alone.
    for b in [data, &data[..h.hdr_len]] {
        let ip = h.ip(b);
        assert_eq!(ip.src_addr().len(), ip.dst_addr().len());
        // The pseudo-header sum, against the byte-wise one (native order
        // there, network order here: equal as bytes, RFC 1071).
        let l4_len = data.len() - h.l4_off;
        let want = ref_pseudo(ip.src_addr(), ip.dst_addr(), h.proto(), l4_len as u32);
        assert_eq!(
            csum::fold(ip.pseudo_header_sum(h.proto(), l4_len)).to_ne_bytes(),
            ref_fold(want).to_be_bytes()
        );
        match h.l4 {
            L4::Tcp => assert_eq!(h.tcp(b).header().len(), h.hdr_len - h.l4_off),
            L4::Udp => assert_eq!(h.udp(b).header().len(), h.hdr_len - h.l4_off),
        }
        assert_eq!(h.ethernet(b).header().len(), h.l3_off);
    }

    // Differential check against etherparse, header by header.
    let eth = h.ethernet(data);
    let e = etherparse::Ethernet2HeaderSlice::from_slice(data).expect("etherparse Ethernet");
    assert_eq!(e.destination(), eth.dst_addr());
    assert_eq!(e.source(), eth.src_addr());
    assert_eq!(e.ether_type().0, eth.ethertype());
    if let Some(tci) = eth.vlan_tci() {
        let v = etherparse::SingleVlanHeaderSlice::from_slice(&data[14..]).expect("etherparse VLAN");
        assert_eq!(tci & 0x0fff, v.vlan_identifier().value());
        assert_eq!(v.ether_type().0, eth.payload_ethertype());
    }
    let ip = &data[h.l3_off..];
    match h.ip(data) {
        IpPacket::V4(p) => {
            assert_eq!(h.l3, L3::Ipv4);
            assert_eq!(eth.payload_ethertype(), wire::ETHERTYPE_IPV4);
            let Ok(e) = etherparse::Ipv4HeaderSlice::from_slice(ip) else {
                // etherparse also refuses a total length below the header
                // length, which wire::parse refuses as well; anything else
                // it refuses, wire::parse must have refused too.
                panic!("wire::parse accepted an IPv4 header etherparse rejects: {h:?}");
            };
            assert_eq!(h.l4_off - h.l3_off, usize::from(e.ihl()) * 4);
            assert_eq!(p.header_len(), usize::from(e.ihl()) * 4);
            assert_eq!(h.ip_len, usize::from(e.total_len()));
            assert_eq!(p.total_len(), e.total_len());
            assert_eq!((p.dscp(), p.ecn()), (e.dcp().value(), e.ecn().value()));
            assert_eq!(p.ident(), e.identification());
            assert_eq!(p.dont_frag(), e.dont_fragment());
            assert_eq!(p.more_frags(), e.more_fragments());
            assert_eq!(p.frag_offset(), usize::from(e.fragments_offset().value()) * 8);
            assert_eq!(h.is_fragment, e.is_fragmenting_payload());
            assert_eq!(p.ttl(), e.ttl());
            assert_eq!(h.proto(), e.protocol().0);
            assert_eq!(p.checksum(), e.header_checksum());
            // Over the header's own bytes (etherparse's to_header() drops
            // the reserved flag bit, so its checksum of the header is not one).
            assert_eq!(p.verify_checksum(), verifies(ref_sum(e.slice())));
            assert_eq!(p.src_addr(), e.source());
            assert_eq!(p.dst_addr(), e.destination());
            assert_eq!(p.options(), e.options());
        }
        IpPacket::V6(p) => {
            assert_eq!(h.l3, L3::Ipv6);
            assert_eq!(eth.payload_ethertype(), wire::ETHERTYPE_IPV6);
            let e = etherparse::Ipv6HeaderSlice::from_slice(ip).expect("etherparse IPv6");
            assert_eq!(h.l4_off - h.l3_off, 40);
            assert_eq!(h.ip_len, 40 + usize::from(e.payload_length()));
            assert_eq!(p.traffic_class(), e.traffic_class());
            assert_eq!(p.flow_label(), e.flow_label().value());
            assert_eq!(h.proto(), e.next_header().0);
            assert_eq!(p.hop_limit(), e.hop_limit());
            assert_eq!(p.src_addr(), e.source());
            assert_eq!(p.dst_addr(), e.destination());
        }
    }
    let l4 = &data[h.l4_off..];
    match h.l4 {
        L4::Tcp => {
            let t = h.tcp(data);
            let e = etherparse::TcpHeaderSlice::from_slice(l4).expect("etherparse TCP");
            assert_eq!(h.hdr_len - h.l4_off, usize::from(e.data_offset()) * 4);
            assert_eq!(t.src_port(), e.source_port());
            assert_eq!(t.dst_port(), e.destination_port());
            assert_eq!(t.seq_number(), e.sequence_number());
            assert_eq!(t.ack_number(), e.acknowledgment_number());
            let f = t.flags();
            let bits = [e.fin(), e.syn(), e.rst(), e.psh(), e.ack(), e.urg(), e.ece(), e.cwr()];
            for (i, b) in bits.into_iter().enumerate() {
                assert_eq!(f & (1 << i) != 0, b, "TCP flag bit {i}");
            }
            assert_eq!(t.window_len(), e.window_size());
            assert_eq!(t.checksum(), e.checksum());
            assert_eq!(t.urgent_at(), e.urgent_pointer());
            assert_eq!(t.options(), e.options());
        }
        L4::Udp => {
            let u = h.udp(data);
            let e = etherparse::UdpHeaderSlice::from_slice(l4).expect("etherparse UDP");
            assert_eq!(u.src_port(), e.source_port());
            assert_eq!(u.dst_port(), e.destination_port());
            assert_eq!(u.length(), e.length());
            assert_eq!(u.checksum(), e.checksum());
        }
    }
});
