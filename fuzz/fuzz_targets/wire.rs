//! The header parser (`wire::parse`) on arbitrary bytes: it must never panic,
//! every offset it returns must lie inside the bytes it was given, and it must
//! agree with etherparse on every frame both accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmso_device::engine::wire::{self, L3, L4};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = wire::parse(data) else {
        return;
    };
    // Offsets are inside the input and ordered.
    assert!(h.l3_off == 14 || h.l3_off == 18, "{h:?}");
    assert!(h.l4_off >= h.l3_off + 20, "{h:?}");
    assert!(h.hdr_len <= data.len(), "{h:?}");
    assert!(h.l4_off + if h.l4 == L4::Tcp { 20 } else { 8 } <= h.hdr_len);
    assert!(h.l4_csum_off() + 2 <= h.hdr_len);
    // The accessors cannot panic on what parse accepted.
    let (s, d) = h.addrs(data);
    assert_eq!(s.len(), d.len());
    let _ = h.proto();

    // Differential check against etherparse on the IP header.
    let et = wire::be16(data, h.l3_off - 2);
    let ip = &data[h.l3_off..];
    match h.l3 {
        L3::Ipv4 => {
            assert_eq!(et, wire::ETHERTYPE_IPV4);
            let Ok(e) = etherparse::Ipv4HeaderSlice::from_slice(ip) else {
                // etherparse also refuses a total length below the header
                // length, which wire::parse refuses as well; anything else
                // it refuses, wire::parse must have refused too.
                panic!("wire::parse accepted an IPv4 header etherparse rejects: {h:?}");
            };
            assert_eq!(h.l4_off - h.l3_off, usize::from(e.ihl()) * 4);
            assert_eq!(h.ip_len, usize::from(e.total_len()));
            assert_eq!(h.proto(), e.protocol().0);
            assert_eq!(h.is_fragment, e.is_fragmenting_payload());
            assert_eq!(s, &e.source());
        }
        L3::Ipv6 => {
            assert_eq!(et, wire::ETHERTYPE_IPV6);
            let e = etherparse::Ipv6HeaderSlice::from_slice(ip).expect("etherparse IPv6");
            assert_eq!(h.l4_off - h.l3_off, 40);
            assert_eq!(h.ip_len, 40 + usize::from(e.payload_length()));
            assert_eq!(h.proto(), e.next_header().0);
            assert_eq!(d, &e.destination());
        }
    }
    if h.l4 == L4::Tcp {
        let t = etherparse::TcpHeaderSlice::from_slice(&data[h.l4_off..]).expect("etherparse TCP");
        assert_eq!(h.hdr_len - h.l4_off, usize::from(t.data_offset()) * 4);
    }
});
