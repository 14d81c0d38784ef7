//! Reads a pcapng capture back with an independent parser (pcap-parser,
//! not the pcap-file crate that vmso-device writes it with).

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// epb_flags direction: true = outbound (sent by the device).
    pub outbound: bool,
    /// The bytes captured (at most the snap length).
    pub data: Vec<u8>,
    /// The frame's length on the wire.
    pub origlen: u32,
    /// opt_comment, if any.
    pub comment: Option<String>,
}

/// The capture's interface: (snaplen, if_name).
#[derive(Clone, Debug, Default)]
pub struct Capture {
    pub snaplen: u32,
    pub if_name: String,
    pub section_comment: String,
    pub frames: Vec<Captured>,
}

const OPT_COMMENT: u16 = 1;
const EPB_FLAGS: u16 = 2;
const IF_NAME: u16 = 2;

/// Parses a whole little-endian pcapng file; panics on anything malformed.
pub fn read(bytes: &[u8]) -> Capture {
    let mut rest = bytes;
    let mut cap = Capture::default();
    let mut sections = 0;
    while !rest.is_empty() {
        let (r, block) = pcap_parser::pcapng::parse_block_le(rest).expect("a pcapng block");
        rest = r;
        match block {
            Block::SectionHeader(s) => {
                sections += 1;
                for o in &s.options {
                    if o.code.0 == OPT_COMMENT {
                        cap.section_comment = opt_str(o);
                    }
                }
            }
            Block::InterfaceDescription(i) => {
                cap.snaplen = i.snaplen;
                for o in &i.options {
                    if o.code.0 == IF_NAME {
                        cap.if_name = opt_str(o);
                    }
                }
            }
            Block::EnhancedPacket(e) => {
                let mut outbound = None;
                let mut comment = None;
                for o in &e.options {
                    match o.code.0 {
                        EPB_FLAGS => {
                            let v = u32::from_le_bytes(o.value()[..4].try_into().unwrap());
                            outbound = Some(match v & 3 {
                                1 => false,
                                2 => true,
                                d => panic!("direction {d} in epb_flags"),
                            });
                        }
                        OPT_COMMENT => comment = Some(opt_str(o)),
                        _ => {}
                    }
                }
                assert_eq!(e.if_id, 0);
                cap.frames.push(Captured {
                    outbound: outbound.expect("every frame has a direction"),
                    data: e.packet_data().to_vec(),
                    origlen: e.orig_len(),
                    comment,
                });
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    assert_eq!(sections, 1, "one section");
    cap
}

fn opt_str(o: &pcap_parser::pcapng::PcapNGOption) -> String {
    String::from_utf8_lossy(&o.value()[..usize::from(o.len)]).into_owned()
}
