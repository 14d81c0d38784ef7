//! `--pcap FILE`: a pcapng capture of exactly what crosses the device's wire
//! side, both ways.
//!
//! [`PcapBackend`] wraps the real [`Backend`]: every frame that a `send`
//! put on the backend (direction *outbound*) and every frame a `recv` took
//! from it (*inbound*) is recorded after the call succeeded, without its
//! virtio-net header. A frame whose header marks it as a GSO superpacket
//! (`--tx-mode handoff`, or a superpacket the host handed to the device) or
//! as carrying a partial checksum is recorded as it crossed, with an
//! `opt_comment` that says so: such a frame is not an MTU frame and its
//! checksum is completed by whoever segments it.
//!
//! Frames are cut to the snap length, and recording stops before the file
//! would grow past the size cap. Blocks go through a large [`BufWriter`]:
//! the data path never waits for the disk except when the buffer is full.
//! [`PcapHandle::flush`] runs on every metrics tick and at exit.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{info, warn};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use serde::Serialize;

use crate::engine::vnet::{self, VnetHdr};
use crate::host::backend::Backend;

/// Largest snap length accepted (the pcapng convention's maximum).
pub const SNAPLEN_MAX: u32 = 262_144;
/// Default snap length: whole frames, superpackets included.
pub const SNAPLEN_DEFAULT: u32 = 65_535 + 64;
/// Default size cap of the capture file.
pub const MAX_BYTES_DEFAULT: u64 = 1 << 30;
/// Buffer between the data path and the file.
const BUF_SIZE: usize = 1 << 20;

/// EPB `epb_flags` direction bits (pcapng §4.3.1).
const FLAG_INBOUND: u32 = 0b01;
const FLAG_OUTBOUND: u32 = 0b10;

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("--pcap {}: cannot create the capture file: {source} (choose a writable file path)", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("--pcap {}: cannot write the pcapng header: {source}", path.display())]
    Header {
        path: PathBuf,
        source: pcap_file::PcapError,
    },
}

/// What to capture and where.
#[derive(Clone, Debug)]
pub struct PcapConfig {
    pub path: PathBuf,
    /// Bytes kept of each frame, 1..=[`SNAPLEN_MAX`].
    pub snaplen: u32,
    /// The file never grows past this many bytes; 0: no cap.
    pub max_bytes: u64,
    /// The wire's name (the TAP), written as the interface name.
    pub iface: String,
    /// Written into the section header's comment (e.g. the TX mode).
    pub comment: String,
}

/// The capture's counters, as the metrics document shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PcapStats {
    /// The capture file.
    pub path: String,
    /// False once recording stopped (size cap reached or a write error).
    pub active: bool,
    /// Frames recorded that the device sent to the wire.
    pub frames_out: u64,
    /// Frames recorded that the device received from the wire.
    pub frames_in: u64,
    /// Bytes of the capture file, headers included (what was handed to the
    /// buffer: the file catches up at the next flush).
    pub file_bytes: u64,
    /// Frames recorded cut to the snap length.
    pub truncated: u64,
    /// Frames recorded that were virtio-net GSO superpackets (hand-off).
    pub gso_frames: u64,
    /// Frames recorded with a partial checksum (NEEDS_CSUM).
    pub partial_csum_frames: u64,
    /// Frames not recorded because the size cap was reached.
    pub dropped_cap: u64,
    /// Frames not recorded because writing the file failed.
    pub dropped_error: u64,
}

/// Counts the bytes written through it.
struct Counted<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The capture file and its counters. Shared by every [`PcapBackend`] of a
/// device through a [`PcapHandle`].
pub struct PcapWriter {
    writer: Option<PcapNgWriter<Counted<BufWriter<File>>>>,
    cfg: PcapConfig,
    stats: PcapStats,
    data: Vec<u8>,
}

/// How the data path and the operator's thread share one capture.
#[derive(Clone)]
pub struct PcapHandle(Arc<Mutex<PcapWriter>>);

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Size of an EPB as pcapng lays it out: block header and trailer (12),
/// fixed fields (20), padded data, options each padded plus opt_endofopt.
fn epb_size(data: usize, comment: Option<&str>) -> u64 {
    let mut opts = 4 + 4; // epb_flags
    if let Some(c) = comment {
        opts += 4 + pad4(c.len());
    }
    (12 + 20 + pad4(data) + opts + 4) as u64
}

fn gso_name(t: u8) -> &'static str {
    match t & !vnet::gso::ECN {
        vnet::gso::TCPV4 => "tcpv4",
        vnet::gso::TCPV6 => "tcpv6",
        vnet::gso::UDP => "udp (UFO)",
        vnet::gso::UDP_L4 => "udp_l4 (USO)",
        _ => "unknown",
    }
}

/// The comment of a frame whose virtio-net header says it is not a plain
/// wire frame; `None` for a plain one.
fn describe(h: &VnetHdr, outbound: bool) -> Option<String> {
    let gso = h.gso_type != vnet::gso::NONE;
    let partial = h.flags & vnet::flags::NEEDS_CSUM != 0;
    if !gso && !partial {
        return None;
    }
    let who = if outbound { "the host" } else { "the device" };
    let mut s = String::new();
    if gso {
        s = format!(
            "virtio-net GSO superpacket (hand-off): gso_type {} gso_size {} hdr_len {}; {who} segments it",
            gso_name(h.gso_type),
            h.gso_size,
            h.hdr_len
        );
    }
    if partial {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "partial checksum (NEEDS_CSUM, csum_start {} csum_offset {}): completed by {who}",
            h.csum_start, h.csum_offset
        ));
    }
    Some(s)
}

impl PcapWriter {
    /// Creates the capture file and writes its section and interface
    /// headers (so that a bad path fails here, at startup).
    pub fn create(cfg: PcapConfig) -> Result<PcapHandle, PcapError> {
        let file = File::create(&cfg.path).map_err(|source| PcapError::Create {
            path: cfg.path.clone(),
            source,
        })?;
        let header = |source| PcapError::Header {
            path: cfg.path.clone(),
            source,
        };
        let out = Counted {
            inner: BufWriter::with_capacity(BUF_SIZE, file),
            n: 0,
        };
        let shb = SectionHeaderBlock {
            endianness: Endianness::native(),
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options: vec![
                SectionHeaderOption::UserApplication(Cow::Owned(format!(
                    "vmso-device {}",
                    env!("CARGO_PKG_VERSION")
                ))),
                SectionHeaderOption::OS(Cow::Borrowed(std::env::consts::OS)),
                SectionHeaderOption::Comment(Cow::Owned(cfg.comment.clone())),
            ],
        };
        let mut writer = PcapNgWriter::with_section_header(out, shb).map_err(header)?;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: cfg.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(cfg.iface.clone())),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "vmso wire side: outbound = sent by the device, inbound = received by the device",
                )),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        writer.write_pcapng_block(idb).map_err(header)?;
        let stats = PcapStats {
            path: cfg.path.display().to_string(),
            active: true,
            file_bytes: writer.get_ref().n,
            ..Default::default()
        };
        info!(
            "capturing the wire side to {} (snap length {}, cap {})",
            cfg.path.display(),
            cfg.snaplen,
            if cfg.max_bytes == 0 {
                "none".to_string()
            } else {
                format!("{} bytes", cfg.max_bytes)
            }
        );
        Ok(PcapHandle(Arc::new(Mutex::new(Self {
            writer: Some(writer),
            cfg,
            stats,
            data: Vec::new(),
        }))))
    }

    /// Records one frame, given as `parts` in order: skips the first
    /// `vnet_len` bytes (the virtio-net header, parsed for the comment).
    fn record(&mut self, parts: &[&[u8]], vnet_len: usize, outbound: bool) {
        if self.writer.is_none() {
            return;
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let frame_len = total.saturating_sub(vnet_len);
        let snap = (self.cfg.snaplen as usize).min(frame_len);
        self.data.clear();
        let mut hdr = [0u8; vnet::LEN];
        let mut skip = vnet_len;
        let mut got_hdr = 0;
        for p in parts {
            let mut p = *p;
            if skip > 0 {
                let n = skip.min(p.len());
                if got_hdr + n <= hdr.len() {
                    hdr[got_hdr..got_hdr + n].copy_from_slice(&p[..n]);
                }
                got_hdr += n;
                skip -= n;
                p = &p[n..];
            }
            let room = snap - self.data.len();
            if room == 0 {
                break;
            }
            self.data.extend_from_slice(&p[..room.min(p.len())]);
        }
        let comment = if vnet_len == vnet::LEN {
            VnetHdr::parse(&hdr).and_then(|h| {
                if h.gso_type != vnet::gso::NONE {
                    self.stats.gso_frames += 1;
                }
                if h.flags & vnet::flags::NEEDS_CSUM != 0 {
                    self.stats.partial_csum_frames += 1;
                }
                describe(&h, outbound)
            })
        } else {
            None
        };
        let size = epb_size(self.data.len(), comment.as_deref());
        if self.cfg.max_bytes != 0 && self.stats.file_bytes + size > self.cfg.max_bytes {
            self.stats.dropped_cap += 1;
            if self.stats.active {
                self.stats.active = false;
                warn!(
                    "capture {} reached --pcap-max-bytes {}: recording stopped",
                    self.cfg.path.display(),
                    self.cfg.max_bytes
                );
            }
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut options = vec![EnhancedPacketOption::Flags(if outbound {
            FLAG_OUTBOUND
        } else {
            FLAG_INBOUND
        })];
        if let Some(c) = comment {
            options.push(EnhancedPacketOption::Comment(Cow::Owned(c)));
        }
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: ts,
            original_len: frame_len as u32,
            data: Cow::Borrowed(&self.data),
            options,
        };
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        match w.write_pcapng_block(epb) {
            Ok(_) => {
                self.stats.file_bytes = w.get_ref().n;
                if outbound {
                    self.stats.frames_out += 1;
                } else {
                    self.stats.frames_in += 1;
                }
                if snap < frame_len {
                    self.stats.truncated += 1;
                }
            }
            Err(e) => {
                self.stats.file_bytes = w.get_ref().n;
                self.stats.dropped_error += 1;
                self.stats.active = false;
                self.writer = None;
                warn!(
                    "capture {}: write failed ({e}): recording stopped",
                    self.cfg.path.display()
                );
            }
        }
    }
}

impl PcapHandle {
    fn lock(&self) -> MutexGuard<'_, PcapWriter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes buffered blocks to the file.
    pub fn flush(&self) {
        let mut s = self.lock();
        if let Some(w) = s.writer.as_mut() {
            if let Err(e) = w.get_mut().flush() {
                let path = s.cfg.path.display().to_string();
                warn!("capture {path}: flush failed ({e}): recording stopped");
                s.writer = None;
                s.stats.active = false;
            }
        }
    }

    /// Flushes and stops recording (at exit).
    pub fn close(&self) {
        self.flush();
        let mut s = self.lock();
        s.writer = None;
        s.stats.active = false;
    }

    pub fn stats(&self) -> PcapStats {
        self.lock().stats.clone()
    }

    pub fn path(&self) -> PathBuf {
        self.lock().cfg.path.clone()
    }

    /// Wraps `inner` so that what crosses it is recorded here.
    pub fn wrap(&self, inner: Box<dyn Backend>) -> Box<dyn Backend> {
        Box::new(PcapBackend {
            inner,
            capture: self.clone(),
        })
    }
}

/// A [`Backend`] that records what crosses `inner` (see the module docs).
pub struct PcapBackend {
    inner: Box<dyn Backend>,
    capture: PcapHandle,
}

impl PcapBackend {
    /// Records a sent frame (after the backend took it).
    fn record_sent(&self, iov: &[libc::iovec]) {
        let parts: Vec<&[u8]> = iov
            .iter()
            .filter(|v| v.iov_len > 0)
            .map(|v| {
                // SAFETY: the caller built `iov` from live, readable buffers
                // (the Backend contract, see `writev_fd`), and they stay
                // valid for the duration of this call.
                unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) }
            })
            .collect();
        self.capture
            .lock()
            .record(&parts, self.inner.vnet_hdr_len(), true);
    }
}

impl Backend for PcapBackend {
    fn send(&mut self, iov: &[libc::iovec]) -> io::Result<usize> {
        let n = self.inner.send(iov)?;
        self.record_sent(iov);
        Ok(n)
    }

    fn send_to(&mut self, queue: usize, iov: &[libc::iovec]) -> io::Result<usize> {
        let n = self.inner.send_to(queue, iov)?;
        self.record_sent(iov);
        Ok(n)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.recv(buf)?;
        if n > 0 {
            self.capture
                .lock()
                .record(&[&buf[..n]], self.inner.vnet_hdr_len(), false);
        }
        Ok(n)
    }

    fn fd(&self) -> RawFd {
        self.inner.fd()
    }

    fn vnet_hdr_len(&self) -> usize {
        self.inner.vnet_hdr_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_gso_and_partial_checksums() {
        assert_eq!(describe(&VnetHdr::data_valid(), true), None);
        let h = VnetHdr {
            flags: vnet::flags::NEEDS_CSUM,
            gso_type: vnet::gso::TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let c = describe(&h, true).unwrap();
        assert!(c.contains("GSO superpacket (hand-off)"), "{c}");
        assert!(c.contains("tcpv4") && c.contains("1448"), "{c}");
        assert!(c.contains("completed by the host"), "{c}");
    }

    fn iov(parts: &[&[u8]]) -> Vec<libc::iovec> {
        parts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect()
    }

    /// A hand-off superpacket and a frame from the host, both with a
    /// virtio-net header: the capture holds the frames without it, the
    /// superpacket commented, read back by pcap-parser.
    #[test]
    fn vnet_frames_are_stripped_and_superpackets_commented() {
        use pcap_parser::pcapng::Block;
        use pcap_parser::traits::PcapNGPacketBlock;
        use std::os::fd::AsRawFd;

        let path =
            std::env::temp_dir().join(format!("vmso-pcap-unit-{}.pcapng", std::process::id()));
        let h = PcapWriter::create(PcapConfig {
            path: path.clone(),
            snaplen: SNAPLEN_DEFAULT,
            max_bytes: 0,
            iface: "unit0".into(),
            comment: "unit".into(),
        })
        .unwrap();
        let (b, peer) = crate::host::backend::SocketBackend::pair_vnet().unwrap();
        let mut b = h.wrap(Box::new(b));
        let gso = VnetHdr {
            flags: vnet::flags::NEEDS_CSUM,
            gso_type: vnet::gso::TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        }
        .to_bytes();
        let head: Vec<u8> = (0..54u8).collect();
        let body = vec![0xab; 3000];
        b.send(&iov(&[&gso[..4], &gso[4..], &head, &body])).unwrap();
        let plain = VnetHdr::data_valid().to_bytes();
        let mut inbound = plain.to_vec();
        inbound.extend_from_slice(&[7u8; 60]);
        // SAFETY: a valid buffer and fd.
        let n = unsafe { libc::send(peer.as_raw_fd(), inbound.as_ptr().cast(), inbound.len(), 0) };
        assert_eq!(n as usize, inbound.len());
        let mut buf = vec![0u8; 4096];
        assert_eq!(b.recv(&mut buf).unwrap(), inbound.len());
        h.close();

        let bytes = std::fs::read(&path).unwrap();
        let mut rest = &bytes[..];
        let mut epbs = Vec::new();
        while !rest.is_empty() {
            let (r, blk) = pcap_parser::pcapng::parse_block_le(rest).unwrap();
            rest = r;
            if let Block::EnhancedPacket(e) = blk {
                let comment = e.options.iter().find(|o| o.code.0 == 1).map(|o| {
                    String::from_utf8_lossy(&o.value()[..usize::from(o.len)]).into_owned()
                });
                epbs.push((e.packet_data().to_vec(), e.orig_len(), comment));
            }
        }
        assert_eq!(epbs.len(), 2);
        let mut want = head.clone();
        want.extend_from_slice(&body);
        assert_eq!(epbs[0].0, want, "outbound superpacket without its header");
        assert_eq!(epbs[0].1 as usize, want.len());
        let c = epbs[0].2.as_deref().unwrap();
        assert!(c.contains("hand-off") && c.contains("gso_size 1448"), "{c}");
        assert_eq!(epbs[1].0, vec![7u8; 60], "inbound frame without its header");
        assert_eq!(epbs[1].2, None);
        let s = h.stats();
        assert_eq!(
            (
                s.frames_out,
                s.frames_in,
                s.gso_frames,
                s.partial_csum_frames
            ),
            (1, 1, 1, 1)
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn epb_size_is_padded() {
        assert_eq!(epb_size(60, None), 12 + 20 + 60 + 8 + 4);
        assert_eq!(epb_size(61, Some("ab")), 12 + 20 + 64 + 8 + 8 + 4);
    }
}
