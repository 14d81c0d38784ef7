//! A read from a vnet-header TAP (`vnet::VnetHdr::parse` + `vnet::classify`)
//! on arbitrary bytes, then what the device does with it: completing a
//! NEEDS_CSUM checksum in place, cutting a TCP superpacket with the TSO
//! engine, hashing it for RSS. Nothing may panic; every action classify
//! allows must stay inside the frame; every segment must fit the gso_size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmso_device::engine::offload::{self, Request, FrameSink, Slice, Stream};
use vmso_device::engine::rss::Rss;
use vmso_device::engine::vnet::{self, RxAction, VnetHdr};

struct Segments {
    gso_size: usize,
    frames: usize,
}

impl FrameSink for Segments {
    fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool {
        let len: usize = payload.iter().map(|s| s.len).sum();
        assert!(len <= self.gso_size, "segment of {len} > gso_size {}", self.gso_size);
        assert!(!header.is_empty());
        self.frames += 1;
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(h) = VnetHdr::parse(data) else {
        return;
    };
    assert_eq!(VnetHdr::parse(&h.to_bytes()), Some(h));
    let mut frame = data[vnet::LEN..].to_vec();
    let rss = Rss::default();
    let _ = rss.hash(&frame);
    let _ = rss.reply_hash(&frame);
    match vnet::classify(&h, &frame) {
        Err(_) | Ok(RxAction::Verify) | Ok(RxAction::Valid) => {}
        Ok(RxAction::Complete { start, offset }) => {
            assert!(start + offset + 2 <= frame.len());
            vnet::complete_csum(&mut frame, start, offset);
        }
        Ok(RxAction::Tcp { gso_size, .. }) => {
            let req = Request::host_superpacket(gso_size);
            let slices = [Slice::from_bytes(&frame)];
            // SAFETY: the slice points into `frame`, alive for this call.
            let stream = unsafe { Stream::new(&slices) };
            let mut segs = Segments {
                gso_size: usize::from(gso_size),
                frames: 0,
            };
            if offload::process(&stream, &req, &mut segs).is_ok() {
                assert!(segs.frames >= 1);
            }
        }
    }
});
