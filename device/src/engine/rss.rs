//! Receive-side scaling: the Toeplitz hash over a frame's addresses and
//! ports, and the indirection table that turns a hash into a queue pair.
//! Pure code, no I/O.

use crate::engine::wire::{self, EthernetFrame, IpPacket, L3, L4};

pub const KEY_LEN: usize = 40;
pub const INDIR_LEN: usize = 128;

/// What a hash covers (`hash_type` in the RX descriptor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum HashType {
    #[default]
    None = 0,
    /// Source and destination addresses.
    L3 = 1,
    /// Addresses and TCP/UDP ports.
    L4 = 2,
}

/// The Toeplitz hash of `input` under `key`: for every set bit of the input,
/// XOR in the 32 key bits starting at that bit position.
pub fn toeplitz(key: &[u8; KEY_LEN], input: &[u8]) -> u32 {
    debug_assert!(input.len() + 4 <= KEY_LEN);
    let mut hash = 0u32;
    // The 32-bit key window at the current bit, and the next key byte.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - b)) & 1);
        }
    }
    hash
}

/// The device's RSS state: key and indirection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rss {
    pub key: [u8; KEY_LEN],
    pub indir: [u8; INDIR_LEN],
}

impl Default for Rss {
    fn default() -> Self {
        Self {
            key: [0; KEY_LEN],
            indir: [0; INDIR_LEN],
        }
    }
}

impl Rss {
    /// The hash of a frame and what it covers; `None` for a frame that is
    /// not IPv4/IPv6.
    pub fn hash(&self, frame: &[u8]) -> Option<(u32, HashType)> {
        Some(self.hash_flow(&flow_fields(frame)?))
    }

    /// The Toeplitz input (Microsoft RSS): source address, destination
    /// address, then source and destination ports when there are ports.
    fn hash_flow(&self, f: &Flow) -> (u32, HashType) {
        let Flow {
            l3,
            src,
            dst,
            ports,
        } = *f;
        let alen = if l3 == L3::Ipv4 { 4 } else { 16 };
        let mut input = [0u8; 36];
        input[..alen].copy_from_slice(src);
        input[alen..2 * alen].copy_from_slice(dst);
        match ports {
            Some((sport, dport)) => {
                input[2 * alen..2 * alen + 2].copy_from_slice(&sport.to_be_bytes());
                input[2 * alen + 2..2 * alen + 4].copy_from_slice(&dport.to_be_bytes());
                (toeplitz(&self.key, &input[..2 * alen + 4]), HashType::L4)
            }
            None => (toeplitz(&self.key, &input[..2 * alen]), HashType::L3),
        }
    }

    /// The hash a reply to `frame` will have: its addresses and ports
    /// swapped (for pinning a flow's sends to the pair that receives it).
    pub fn reply_hash(&self, frame: &[u8]) -> Option<u32> {
        let f = flow_fields(frame)?;
        let reply = Flow {
            l3: f.l3,
            src: f.dst,
            dst: f.src,
            ports: f.ports.map(|(s, d)| (d, s)),
        };
        Some(self.hash_flow(&reply).0)
    }

    /// The queue pair for `hash`, among `queues` in use: an entry out of
    /// range steers to pair 0.
    pub fn queue(&self, hash: u32, queues: usize) -> usize {
        let q = usize::from(self.indir[hash as usize % INDIR_LEN]);
        if q < queues {
            q
        } else {
            0
        }
    }
}

/// What a hash covers: the L3 type, source and destination addresses and,
/// for unfragmented TCP/UDP, the ports. The addresses are borrowed from the
/// frame (copying them here costs the hash a tenth of its time).
#[derive(Clone, Copy)]
struct Flow<'a> {
    l3: L3,
    src: &'a [u8],
    dst: &'a [u8],
    ports: Option<(u16, u16)>,
}

fn flow_fields(frame: &[u8]) -> Option<Flow<'_>> {
    match wire::parse(frame) {
        Ok(h) => {
            let ports = (!h.is_fragment).then(|| match h.l4 {
                L4::Tcp => {
                    let t = h.tcp(frame);
                    (t.src_port(), t.dst_port())
                }
                L4::Udp => {
                    let u = h.udp(frame);
                    (u.src_port(), u.dst_port())
                }
            });
            let (src, dst) = h.ip(frame).into_addrs();
            Some(Flow {
                l3: h.l3,
                src,
                dst,
                ports,
            })
        }
        Err(_) => l3_only(frame),
    }
}

/// IPv4/IPv6 that the offload parser refuses (other protocols, fragments
/// of them, bad header lengths): the addresses alone, when the fixed IP
/// header is there.
fn l3_only(f: &[u8]) -> Option<Flow<'_>> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    let l3 = match eth.payload_ethertype() {
        wire::ETHERTYPE_IPV4 => L3::Ipv4,
        wire::ETHERTYPE_IPV6 => L3::Ipv6,
        _ => return None,
    };
    let ip = IpPacket::new_unchecked(l3, &f[eth.header_len()..]);
    ip.check_len().ok()?;
    let (src, dst) = ip.into_addrs();
    Some(Flow {
        l3,
        src,
        dst,
        ports: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of Microsoft's RSS verification suite.
    const MS_KEY: [u8; KEY_LEN] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn input(src: &[u8], dst: &[u8], ports: Option<(u16, u16)>) -> Vec<u8> {
        let mut v = [src, dst].concat();
        if let Some((s, d)) = ports {
            v.extend_from_slice(&s.to_be_bytes());
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    /// Checks one of Microsoft's published vectors, written as their table
    /// has it: the destination and the source as `address:port`, the hash
    /// of the addresses, the hash with the TCP ports (both in hex).
    fn check_vector(case: &str) {
        let f: Vec<&str> = case.split_whitespace().collect();
        let [dst, src, l3, l4] = f[..] else {
            panic!("{case}: not 4 fields")
        };
        let octets = |a: &str| -> (Vec<u8>, u16) {
            let a: std::net::SocketAddr = a.parse().unwrap();
            let ip = match a.ip() {
                std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
                std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
            };
            (ip, a.port())
        };
        let hex = |h: &str| u32::from_str_radix(h, 16).unwrap();
        let ((d, dport), (s, sport)) = (octets(dst), octets(src));
        assert_eq!(toeplitz(&MS_KEY, &input(&s, &d, None)), hex(l3), "{case}");
        let with_ports = input(&s, &d, Some((sport, dport)));
        assert_eq!(toeplitz(&MS_KEY, &with_ports), hex(l4), "{case}");
    }

    /// Microsoft's published IPv4 vectors.
    #[test]
    fn microsoft_ipv4_vectors() {
        for case in [
            "161.142.100.80:1766 66.9.149.187:2794   323e8fc2 51ccc178",
            "65.69.140.83:4739   199.92.111.2:14230  d718262a c626b0ea",
            "12.22.207.184:38024 24.19.198.95:12898  d2d0a5de 5c2b394a",
            "209.142.163.6:2217  38.27.205.30:48228  82989176 afc7327f",
            "202.188.127.2:1303  153.39.163.191:44251 5d1809c5 10e828a2",
        ] {
            check_vector(case);
        }
    }

    /// Microsoft's published IPv6 vectors.
    #[test]
    fn microsoft_ipv6_vectors() {
        for case in [
            "[3ffe:2501:200:3::1]:1766 [3ffe:2501:200:1fff::7]:2794 2cc18cd5 40207d3d",
            "[ff02::1]:4739 [3ffe:501:8::260:97ff:fe40:efab]:14230 0f0c461c dde51bbf",
            "[fe80::200:f8ff:fe21:67cf]:38024 [3ffe:1900:4545:3:200:f8ff:fe21:67cf]:44251 4b61e985 02d1feef",
        ] {
            check_vector(case);
        }
    }

    #[test]
    fn frame_hash_and_steering() {
        let mut rss = Rss {
            key: MS_KEY,
            ..Default::default()
        };
        // Ethernet + IPv4 + TCP from 66.9.149.187:2794 to 161.142.100.80:1766.
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[23] = 6;
        f[26..30].copy_from_slice(&[66, 9, 149, 187]);
        f[30..34].copy_from_slice(&[161, 142, 100, 80]);
        f[34..36].copy_from_slice(&2794u16.to_be_bytes());
        f[36..38].copy_from_slice(&1766u16.to_be_bytes());
        f[46] = 0x50;
        assert_eq!(rss.hash(&f), Some((0x51cc_c178, HashType::L4)));
        rss.indir[0x51cc_c178 % 128] = 3;
        assert_eq!(rss.queue(0x51cc_c178, 4), 3);
        assert_eq!(
            rss.queue(0x51cc_c178, 2),
            0,
            "entry beyond the pairs in use"
        );
        // The reply (161.142.100.80:1766 -> 66.9.149.187:2794) hashes as a
        // frame in the other direction would.
        let mut r = f.clone();
        r[26..30].copy_from_slice(&[161, 142, 100, 80]);
        r[30..34].copy_from_slice(&[66, 9, 149, 187]);
        r[34..36].copy_from_slice(&1766u16.to_be_bytes());
        r[36..38].copy_from_slice(&2794u16.to_be_bytes());
        assert_eq!(rss.reply_hash(&r), Some(0x51cc_c178));
        // Another protocol: addresses only.
        f[23] = 47;
        assert_eq!(rss.hash(&f), Some((0x323e_8fc2, HashType::L3)));
        assert_eq!(rss.hash(&f[..20]), None);
    }
}
