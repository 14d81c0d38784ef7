//! The metrics document: every counter of the device as one JSON object
//! (see `docs/metrics.md`, which documents each field), and where it goes:
//! a file replaced atomically (write a temporary file, then rename), or
//! one line per document on a FIFO, as Firecracker writes its metrics.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::counters::Counters;
use crate::engine::coalesce::FlushStats;
use crate::host::pcap::PcapStats;

/// The version of the document's layout; it changes when a field changes
/// meaning or goes away (new fields do not change it).
pub const SCHEMA_VERSION: u32 = 1;

/// Where a device's counters are read from. `STAT[i]`, what the guest
/// reads, is `device` plus every queue's.
pub struct Sources<'a> {
    /// The device-wide part (control path, VMM).
    pub device: &'a Counters,
    /// One set per queue pair, in queue order.
    pub queues: Vec<&'a Counters>,
    /// The receive coalescers' flush reasons, one per queue pair.
    pub coalescers: Vec<&'a FlushStats>,
}

/// The device's part of the document. Everything counts from the start
/// of the process except `device_since_reset`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceMetrics {
    /// Device totals, device resets included.
    pub device: BTreeMap<&'static str, u64>,
    /// Per queue pair totals, device resets included.
    pub queues: Vec<BTreeMap<&'static str, u64>>,
    /// Flush reasons summed over the queue pairs.
    pub coalescer: BTreeMap<&'static str, u64>,
    /// The device counters as the guest reads them now (STAT[]): cleared
    /// by every device reset.
    pub device_since_reset: BTreeMap<&'static str, u64>,
}

/// Adds `b` into `a`, name by name.
fn add(a: &mut BTreeMap<&'static str, u64>, b: BTreeMap<&'static str, u64>) {
    for (k, v) in b {
        let e = a.entry(k).or_insert(0);
        *e = e.wrapping_add(v);
    }
}

/// Reads every counter of `src` once.
pub fn snapshot(src: &Sources) -> DeviceMetrics {
    let mut coalescer = BTreeMap::new();
    for c in &src.coalescers {
        for (k, v) in c.snapshot() {
            *coalescer.entry(k).or_insert(0) += v;
        }
    }
    if coalescer.is_empty() {
        coalescer = FlushStats::default().snapshot();
    }
    let queues: Vec<_> = src.queues.iter().map(|q| q.snapshot_total()).collect();
    let mut device = src.device.snapshot_total();
    for q in &queues {
        add(&mut device, q.clone());
    }
    let mut device_since_reset = src.device.snapshot();
    for q in &src.queues {
        add(&mut device_since_reset, q.snapshot());
    }
    DeviceMetrics {
        device,
        queues,
        coalescer,
        device_since_reset,
    }
}

/// What the process is serving (fixed for its life).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub version: &'static str,
    pub mac: String,
    /// The TAP's name, or the backend's description.
    pub wire: String,
    /// The socket path, or `fd N` for a socket handed over.
    pub socket: String,
    pub tx_mode: String,
    pub vnet_hdr: bool,
}

/// The VMM connections served.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VmmStats {
    /// VMM connections that ended (each one turned the device over).
    pub disconnects: u64,
}

/// The metrics writer's own counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WriterStats {
    /// Documents written before this one.
    pub writes: u64,
    /// Documents that could not be written.
    pub errors: u64,
    /// Documents left out because the FIFO was full (no reader).
    pub dropped: u64,
}

/// One metrics document.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub schema: u32,
    /// What made this document: `start`, `interval`, `signal` (SIGUSR1),
    /// `exit`.
    pub trigger: &'static str,
    pub timestamp_ms: u64,
    pub uptime_ms: u64,
    pub process: ProcessInfo,
    #[serde(flatten)]
    pub device: DeviceMetrics,
    pub vmm: VmmStats,
    /// `null` without `--pcap`.
    pub pcap: Option<PcapStats>,
    pub metrics: WriterStats,
}

impl Document {
    pub fn new(
        trigger: &'static str,
        started: Instant,
        process: ProcessInfo,
        device: DeviceMetrics,
    ) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            trigger,
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            uptime_ms: started.elapsed().as_millis() as u64,
            process,
            device,
            vmm: VmmStats::default(),
            pcap: None,
            metrics: WriterStats::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics {}: directory {} does not exist (create it, or point --metrics elsewhere)", path.display(), dir.display())]
    MissingDir { path: PathBuf, dir: PathBuf },
    #[error("--metrics {}: is a directory (give a file path, e.g. {}/vmso-metrics.json)", path.display(), path.display())]
    IsDir { path: PathBuf },
    #[error("--metrics {}: open the FIFO: {source}", path.display())]
    OpenFifo { path: PathBuf, source: io::Error },
    #[error("--metrics {}: write {}: {source} (is the directory writable?)", path.display(), tmp.display())]
    WriteTemp {
        path: PathBuf,
        tmp: PathBuf,
        source: io::Error,
    },
    #[error("--metrics {}: rename {} over it: {source}", path.display(), tmp.display())]
    Rename {
        path: PathBuf,
        tmp: PathBuf,
        source: io::Error,
    },
    #[error("--metrics {}: FIFO full (no reader?): document left out", path.display())]
    FifoFull { path: PathBuf },
    #[error("--metrics {}: write to the FIFO: {source}", path.display())]
    WriteFifo { path: PathBuf, source: io::Error },
    #[error("serialise the metrics document: {0}")]
    Json(#[from] serde_json::Error),
}

enum Target {
    /// A regular file, replaced by renaming `tmp` over it.
    File { tmp: PathBuf },
    /// A FIFO, held open read-write so that opening never blocks nor
    /// fails without a reader; `broken` when a line was cut short.
    Fifo { file: File, broken: bool },
}

/// Writes documents to `--metrics PATH`.
pub struct MetricsWriter {
    path: PathBuf,
    target: Target,
    pub stats: WriterStats,
}

/// How long a FIFO write may wait for the reader to finish a line.
const FIFO_WAIT: Duration = Duration::from_secs(1);

impl MetricsWriter {
    /// Checks `path` and prepares to write there: a FIFO is opened, a file
    /// is created on the first write.
    pub fn open(path: &Path) -> Result<Self, MetricsError> {
        let path = path.to_path_buf();
        if let Ok(m) = std::fs::metadata(&path) {
            if m.file_type().is_fifo() {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path)
                    .map_err(|source| MetricsError::OpenFifo {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(Self {
                    path,
                    target: Target::Fifo {
                        file,
                        broken: false,
                    },
                    stats: WriterStats::default(),
                });
            }
            if m.is_dir() {
                return Err(MetricsError::IsDir { path });
            }
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(MetricsError::MissingDir { path, dir });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "metrics".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        Ok(Self {
            path,
            target: Target::File { tmp },
            stats: WriterStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_fifo(&self) -> bool {
        matches!(self.target, Target::Fifo { .. })
    }

    /// Writes one document (with this writer's counters filled in).
    pub fn write(&mut self, doc: &mut Document) -> Result<(), MetricsError> {
        doc.metrics = self.stats.clone();
        let r = self.write_inner(doc);
        match &r {
            Ok(()) => self.stats.writes += 1,
            Err(MetricsError::FifoFull { .. }) => self.stats.dropped += 1,
            Err(_) => self.stats.errors += 1,
        }
        r
    }

    fn write_inner(&mut self, doc: &Document) -> Result<(), MetricsError> {
        match &mut self.target {
            Target::File { tmp } => {
                let mut bytes = serde_json::to_vec_pretty(doc)?;
                bytes.push(b'\n');
                let werr = |source| MetricsError::WriteTemp {
                    path: self.path.clone(),
                    tmp: tmp.clone(),
                    source,
                };
                let mut f = File::create(&*tmp).map_err(werr)?;
                if let Err(e) = f.write_all(&bytes) {
                    let _ = std::fs::remove_file(&*tmp);
                    return Err(werr(e));
                }
                drop(f);
                std::fs::rename(&*tmp, &self.path).map_err(|source| {
                    let _ = std::fs::remove_file(&*tmp);
                    MetricsError::Rename {
                        path: self.path.clone(),
                        tmp: tmp.clone(),
                        source,
                    }
                })
            }
            Target::Fifo { file, broken } => {
                let mut bytes = Vec::new();
                if *broken {
                    // End the line a previous write cut short: the reader
                    // sees one bad line, then whole documents again.
                    bytes.push(b'\n');
                }
                serde_json::to_writer(&mut bytes, doc)?;
                bytes.push(b'\n');
                match write_fifo(file, &bytes) {
                    FifoWrite::Done => {
                        *broken = false;
                        Ok(())
                    }
                    FifoWrite::Full => Err(MetricsError::FifoFull {
                        path: self.path.clone(),
                    }),
                    FifoWrite::Cut(source) => {
                        *broken = true;
                        Err(MetricsError::WriteFifo {
                            path: self.path.clone(),
                            source,
                        })
                    }
                }
            }
        }
    }
}

enum FifoWrite {
    Done,
    /// Nothing written: the pipe is full.
    Full,
    /// Part of the line written, then an error or the time ran out.
    Cut(io::Error),
}

/// Writes `bytes` to a non-blocking FIFO: nothing if it is full, else the
/// whole line, waiting up to [`FIFO_WAIT`] for room.
fn write_fifo(file: &mut File, mut bytes: &[u8]) -> FifoWrite {
    let deadline = Instant::now() + FIFO_WAIT;
    let mut started = false;
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(n) => {
                started = true;
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !started {
                    return FifoWrite::Full;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return FifoWrite::Cut(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the reader did not make room within 1 s",
                    ));
                }
                let mut pfd = libc::pollfd {
                    fd: file.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on the stack, count 1.
                unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
            }
            Err(e) => return FifoWrite::Cut(e),
        }
    }
    FifoWrite::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Stat;

    fn doc(c: &Counters, f: &FlushStats) -> Document {
        let none = Counters::default();
        let m = snapshot(&Sources {
            device: &none,
            queues: vec![c],
            coalescers: vec![f],
        });
        Document::new("start", Instant::now(), ProcessInfo::default(), m)
    }

    #[test]
    fn device_is_the_sum_of_its_parts() {
        let (d, q0, q1) = (
            Counters::default(),
            Counters::default(),
            Counters::default(),
        );
        d.inc(Stat::vmm_refused);
        q0.add(Stat::tx_packets, 2);
        q1.add(Stat::tx_packets, 5);
        q1.clear();
        q1.add(Stat::tx_packets, 1);
        let m = snapshot(&Sources {
            device: &d,
            queues: vec![&q0, &q1],
            coalescers: vec![],
        });
        assert_eq!(m.device["tx_packets"], 8);
        assert_eq!(m.device["vmm_refused"], 1);
        assert_eq!(m.device_since_reset["tx_packets"], 3);
        assert_eq!(m.queues[1]["tx_packets"], 6);
        assert_eq!(
            m.coalescer.len(),
            crate::engine::coalesce::REASON_NAMES.len()
        );
    }

    #[test]
    fn document_has_every_counter() {
        let c = Counters::default();
        c.add(Stat::tx_packets, 3);
        let f = FlushStats::default();
        let v = serde_json::to_value(doc(&c, &f)).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["device"]["tx_packets"], 3);
        assert_eq!(
            v["device"].as_object().unwrap().len(),
            crate::counters::STAT_COUNT
        );
        assert_eq!(v["queues"][0]["tx_packets"], 3);
        c.clear();
        c.inc(Stat::tx_packets);
        let v = serde_json::to_value(doc(&c, &f)).unwrap();
        assert_eq!(v["device"]["tx_packets"], 4, "totals survive a reset");
        assert_eq!(v["device_since_reset"]["tx_packets"], 1);
        assert_eq!(v["coalescer"]["idle"], 0);
        assert!(v["pcap"].is_null());
    }

    #[test]
    fn file_is_replaced_and_missing_dir_refused() {
        let dir = std::env::temp_dir().join(format!("vmso-metrics-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        let mut s = MetricsWriter::open(&path).unwrap();
        let c = Counters::default();
        let f = FlushStats::default();
        s.write(&mut doc(&c, &f)).unwrap();
        c.inc(Stat::rx_packets);
        s.write(&mut doc(&c, &f)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["device"]["rx_packets"], 1);
        assert_eq!(v["metrics"]["writes"], 1);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
        let e = MetricsWriter::open(&dir.join("nope/m.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fifo_gets_lines_and_never_blocks() {
        let dir = std::env::temp_dir().join(format!("vmso-metrics-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.fifo");
        let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
        let mut s = MetricsWriter::open(&path).unwrap();
        assert!(s.is_fifo());
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let c = Counters::default();
        let f = FlushStats::default();
        s.write(&mut doc(&c, &f)).unwrap();
        s.write(&mut doc(&c, &f)).unwrap();
        let mut got = String::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = io::Read::read(&mut reader, &mut buf) {
            if n == 0 {
                break;
            }
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        let lines: Vec<_> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["schema"], 1);
        }
        // Nobody reads: the pipe fills, and documents are left out, not
        // waited for.
        drop(reader);
        let t = Instant::now();
        let mut full = 0;
        for _ in 0..200 {
            if let Err(MetricsError::FifoFull { .. }) = s.write(&mut doc(&c, &f)) {
                full += 1;
            }
        }
        assert!(full > 0);
        assert!(s.stats.dropped > 0);
        assert!(t.elapsed() < Duration::from_secs(30));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
