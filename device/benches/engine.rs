//! Engine benchmarks (not tests): prints figures and ratios measured in the
//! same run. `cargo bench -p vmso-device --bench engine`.
//!
//! 1. TSO + checksum of 64 KiB packets at MSS 1448 (payload over 16
//!    non-contiguous 4 KiB pieces, as the VA gather hands it over), against a
//!    plain memcpy of the same payload bytes: the copy a driver would make.
//! 2. Address translations per second through the IOTLB, hits and misses, in
//!    4-level and 5-level paging.
//! 3. The receive path over the same 64 KiB as 45 MSS-sized IPv4/TCP
//!    frames: checksum verdict, RSS hash and receive coalescing into one
//!    superpacket; and the RSS hash of one frame alone.
//!
//! Each figure is the median of several rounds, with min and max; the machine
//! is shared, so the ratio is the figure to read.

use std::hint::black_box;
use std::time::Instant;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmso_device::abi::rxstat;
use vmso_device::counters::Counters;
use vmso_device::engine::coalesce::{Coalescer, Params, Reason};
use vmso_device::engine::dma::Translator;
use vmso_device::engine::iotlb::Iotlb;
use vmso_device::engine::mmu::PagingMode;
use vmso_device::engine::offload::{self, FrameSink, Request, Slice, Stream};
use vmso_device::engine::rss::Rss;
use vmso_device::engine::verdict;
use vmso_device::engine::wire;

const ROUNDS: usize = 9;

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

impl Stats {
    /// "(min .., max ..)", as every figure prints after its median.
    fn range(&self) -> String {
        format!("(min {:.2}, max {:.2})", self.min, self.max)
    }
}

/// Runs `f` for about 100 ms per round and returns, per round, the work
/// done per second: `f(n)` is given the work done so far in the round and
/// returns how much more it did.
fn per_second(mut f: impl FnMut(u64) -> u64) -> Vec<f64> {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            let mut n = 0u64;
            while t.elapsed().as_millis() < 100 {
                n += f(n);
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

/// Runs `f` (which processes `bytes` bytes per call) for about 100 ms per
/// round and returns Gbit/s per round.
fn gbps(bytes: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..20 {
        f(); // warm up
    }
    let calls = per_second(|_| {
        for _ in 0..16 {
            f();
        }
        16
    });
    calls.iter().map(|c| c * bytes as f64 * 8.0 / 1e9).collect()
}

/// Millions of `f` per second, per round: `f` runs over each of `items`.
fn mps<T>(items: &[T], mut f: impl FnMut(&T)) -> Vec<f64> {
    let rates = per_second(|_| {
        for i in items {
            f(i);
        }
        items.len() as u64
    });
    rates.iter().map(|r| r / 1e6).collect()
}

/// Counts frames; the frame data is touched only through its header.
struct CountingSink {
    frames: u64,
    bytes: u64,
}

impl FrameSink for CountingSink {
    fn frame(&mut self, header: &[u8], payload: &[Slice]) -> bool {
        self.frames += 1;
        self.bytes += (header.len() + payload.iter().map(|s| s.len).sum::<usize>()) as u64;
        black_box(header);
        true
    }
}

fn tcp_header() -> Vec<u8> {
    let mut h = vec![0u8; 54];
    h[12] = 0x08; // IPv4
    h[14] = 0x45;
    h[17] = 40; // IPv4 total length of the template
    h[23] = 6; // TCP
    h[26..30].copy_from_slice(&[198, 18, 0, 2]);
    h[30..34].copy_from_slice(&[198, 18, 0, 1]);
    h[46] = 5 << 4;
    h[47] = 0x18;
    h
}

/// One round of the TSO-vs-memcpy comparison over `npkts` distinct packets
/// (1 = cache-hot; many = a working set far beyond the caches, like user
/// data that has not just been touched).
fn bench_tso(npkts: usize, label: &str) {
    let hdr = tcp_header();
    let payload_len = 65536 - hdr.len();
    // Each packet: 16 separate 4 KiB-ish allocations, like pages gathered by VA.
    let packets: Vec<Vec<Vec<u8>>> = (0..npkts)
        .map(|p| {
            (0..16)
                .map(|i| {
                    let n = if i < 15 {
                        4096
                    } else {
                        payload_len - 15 * 4096
                    };
                    (0..n).map(|b| (b * 7 + i + p) as u8).collect()
                })
                .collect()
        })
        .collect();
    let streams: Vec<Vec<Slice>> = packets
        .iter()
        .map(|pieces| {
            let mut v = vec![Slice::from_bytes(&hdr)];
            v.extend(pieces.iter().map(|p| Slice::from_bytes(p)));
            v
        })
        .collect();
    let req = Request {
        tso: true,
        mss: 1448,
        mtu: 1500,
        ..Default::default()
    };
    let mut k = 0;
    let tso = gbps(payload_len, || {
        k = (k + 1) % npkts;
        // SAFETY: the slices point into `hdr` and `packets`, alive for the bench.
        let stream = unsafe { Stream::new(&streams[k]) };
        let mut sink = CountingSink {
            frames: 0,
            bytes: 0,
        };
        let e = offload::process(&stream, &req, &mut sink).unwrap();
        black_box(e);
    });
    let flats: Vec<Vec<u8>> = packets.iter().map(|p| p.concat()).collect();
    let mut dst = vec![0u8; payload_len * npkts.min(256)];
    let mut k = 0;
    let copy = gbps(payload_len, || {
        k = (k + 1) % npkts;
        let d = (k % 256) * payload_len;
        dst[d..d + payload_len].copy_from_slice(black_box(&flats[k]));
        black_box(&mut dst);
    });
    let (t, c) = (stats(tso.clone()), stats(copy.clone()));
    let ratios = stats(tso.iter().zip(&copy).map(|(a, b)| a / b).collect());
    let kib = npkts * 64;
    println!("TSO+checksum of 64 KiB packets @ MSS 1448 (45 segments), one core, {label} ({npkts} packets, {kib} KiB):");
    println!("  engine   {:7.2} Gbit/s  {}", t.median, t.range());
    println!("  memcpy   {:7.2} Gbit/s  {}", c.median, c.range());
    println!(
        "  ratio engine/memcpy {:.2}  (per-round min {:.2}, max {:.2})",
        ratios.median, ratios.min, ratios.max
    );
    println!(
        "RESULT tso_{label}_gbps={:.2} memcpy_{label}_gbps={:.2} tso_vs_memcpy_{label}={:.2}",
        t.median, c.median, ratios.median
    );
}

const PT_BASE: u64 = 0x10_0000;
const PAGES: u64 = 65536;

/// Maps PAGES 4 KiB pages at `va0` in a fresh address space; returns the PDBR.
fn build_tables(mem: &GuestMemoryMmap, levels: u32, va0: u64) -> u64 {
    let mut next = PT_BASE;
    let mut alloc = || {
        let p = next;
        next += 4096;
        p
    };
    let root = alloc();
    for i in 0..PAGES {
        let va = va0 + i * 4096;
        let mut table = root;
        for level in (2..=levels).rev() {
            let s = 12 + 9 * (level - 1);
            let ea = table + ((va >> s) & 0x1ff) * 8;
            let e: u64 = mem.read_obj(GuestAddress(ea)).unwrap();
            table = if e & 1 != 0 {
                e & 0x000f_ffff_ffff_f000
            } else {
                let t = alloc();
                mem.write_obj(t | 3, GuestAddress(ea)).unwrap();
                t
            };
        }
        let gpa = 0x4000_0000 + (i % 1024) * 4096;
        mem.write_obj(gpa | 3, GuestAddress(table + ((va >> 12) & 0x1ff) * 8))
            .unwrap();
    }
    root
}

fn bench_translate() {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x4100_0000)]).unwrap();
    for (name, mode, levels, va0) in [
        ("4-level", PagingMode::Level4, 4, 0x7f00_0000_0000u64),
        ("5-level", PagingMode::Level5, 5, 0x00ab_0000_0000_0000u64),
    ] {
        mem.write_slice(&vec![0u8; 64 << 20], GuestAddress(PT_BASE))
            .unwrap();
        let pdbr = build_tables(&mem, levels, va0);
        for (kind, span) in [("hits", 256u64), ("misses", PAGES)] {
            let counters = Counters::default();
            let mut iotlb = Iotlb::default();
            let mut tr = Translator {
                mem: &mem,
                iotlb: &mut iotlb,
                counters: &counters,
            };
            let rates = per_second(|n| {
                for i in 0..4096u64 {
                    // Stride through `span` pages; 256 pages fit the
                    // IOTLB, 65536 do not (direct-mapped, 1024 sets).
                    let va = va0 + ((i * 7919 + n) % span) * 4096 + 8;
                    black_box(tr.translate(pdbr, mode, va).unwrap());
                }
                4096
            });
            let s = stats(rates.iter().map(|r| r / 1e6).collect());
            let hits = counters.get(vmso_device::counters::Stat::iotlb_hits) as f64;
            let total = hits + counters.get(vmso_device::counters::Stat::iotlb_misses) as f64;
            println!(
                "translate {name} IOTLB {kind:6}: {:7.2} M/s {}, hit ratio {:.3}",
                s.median,
                s.range(),
                hits / total
            );
            println!(
                "RESULT translate_{}_{}_mps={:.2}",
                if levels == 4 { "4l" } else { "5l" },
                kind,
                s.median
            );
        }
    }
}

/// 45 in-order IPv4/TCP segments of one flow (MSS 1448), with valid
/// checksums, as a receiver gets them.
fn rx_segments() -> Vec<Vec<u8>> {
    (0..45)
        .map(|i| {
            let off = i * 1448;
            let payload: Vec<u8> = (off..off + 1448).map(|b| (b * 7) as u8).collect();
            let mut v = Vec::new();
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
                .tcp(40000, 5201, 1000 + off as u32, 512)
                .ack(7)
                .write(&mut v, &payload)
                .unwrap();
            v
        })
        .collect()
}

fn bench_rx() {
    let segs = rx_segments();
    let bytes: usize = segs.iter().map(|s| s.len() - 54).sum();
    let rss = Rss {
        key: [0x6d; 40],
        ..Default::default()
    };
    let mut c = Coalescer::new(Params::default());
    let now = Instant::now();
    let (mut out_frames, mut out_bytes) = (0u64, 0u64);
    let rx = gbps(bytes, || {
        let mut deliver = |f: &[u8], m: verdict::RxMeta| {
            out_frames += 1;
            out_bytes += f.len() as u64 + u64::from(m.gso_segs);
        };
        for s in &segs {
            let st = verdict::verify_checksums(black_box(s));
            black_box(rss.hash(s));
            c.push(s, st, now, &mut deliver);
        }
        c.flush_all(Reason::Idle, &mut deliver);
    });
    // 44 segments merge into one superpacket (Params::default().max_segs),
    // the 45th goes out alone at the idle flush.
    assert!(out_frames > 0 && out_bytes > 0);
    assert_eq!(c.tally.merged, 43 * c.tally.count(Reason::Idle));
    let st = verdict::verify_checksums(&segs[0]);
    assert_eq!(st, rxstat::IP_OK | rxstat::L4_OK);
    let r = stats(rx);
    println!(
        "RX verify+RSS+coalesce of 45 frames @ MSS 1448 (64 KiB): {:7.2} Gbit/s {}",
        r.median,
        r.range()
    );
    let h = stats(mps(&segs, |s| {
        black_box(rss.hash(black_box(s)));
    }));
    println!(
        "RSS hash of one IPv4/TCP frame: {:7.2} M/s {}",
        h.median,
        h.range()
    );
    let p = stats(mps(&segs, |s| {
        black_box(wire::parse(black_box(s)).unwrap());
    }));
    println!(
        "wire::parse of one IPv4/TCP frame: {:7.2} M/s {}",
        p.median,
        p.range()
    );
    println!(
        "RESULT rx_lro_gbps={:.2} rss_hash_mps={:.2} parse_mps={:.2}",
        r.median, h.median, p.median
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either way: always run, it takes a few seconds.
    bench_tso(1, "hot");
    bench_tso(512, "cold");
    bench_rx();
    bench_translate();
}
