//! Device statistics: one struct of atomic counters, readable by the guest
//! through the STAT block of BAR0 and printed by the binary on exit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

// The counters (index, name, meaning) are part of the ABI: they are
// written in abi/vmso-abi.toml and generated into abi.rs.
pub use crate::abi::{Stat, STAT_COUNT, STAT_NAMES};

/// All counters of one device. Relaxed atomics: the counters are statistics,
/// nothing is ordered by them.
///
/// [`Counters::clear`] (a device reset) zeroes what the guest sees, and
/// moves the values into `retired`, so that [`Counters::snapshot_total`]
/// counts from the start of the process (for the metrics document).
#[derive(Debug)]
pub struct Counters {
    values: [AtomicU64; STAT_COUNT],
    retired: [AtomicU64; STAT_COUNT],
    /// Held by `clear` and `snapshot_total`, never by `add`: a total never
    /// sees a value both in `values` and in `retired`, or in neither.
    retire: Mutex<()>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            retired: std::array::from_fn(|_| AtomicU64::new(0)),
            retire: Mutex::new(()),
        }
    }
}

impl Counters {
    pub fn add(&self, s: Stat, n: u64) {
        self.values[s as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self, s: Stat) {
        self.add(s, 1);
    }

    pub fn get(&self, s: Stat) -> u64 {
        self.values[s as usize].load(Ordering::Relaxed)
    }

    /// Counter by raw index; `None` past the end.
    pub fn get_index(&self, i: usize) -> Option<u64> {
        self.values.get(i).map(|v| v.load(Ordering::Relaxed))
    }

    /// Zeroes the counters the guest sees (a device reset); the totals
    /// keep counting.
    pub fn clear(&self) {
        let _g = self.retire.lock().unwrap_or_else(|p| p.into_inner());
        for (v, r) in self.values.iter().zip(&self.retired) {
            r.fetch_add(v.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Every counter since the process started, resets included.
    pub fn snapshot_total(&self) -> BTreeMap<&'static str, u64> {
        let _g = self.retire.lock().unwrap_or_else(|p| p.into_inner());
        STAT_NAMES
            .iter()
            .zip(self.values.iter().zip(&self.retired))
            .map(|(n, (v, r))| {
                let t = v.load(Ordering::Relaxed) + r.load(Ordering::Relaxed);
                (*n, t)
            })
            .collect()
    }

    /// Every counter by its `docs/abi.md` name, zeros included, as the
    /// guest sees them now (since the last reset).
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        STAT_NAMES
            .iter()
            .zip(&self.values)
            .map(|(n, v)| (*n, v.load(Ordering::Relaxed)))
            .collect()
    }

    /// `name value` lines of every counter that is not zero.
    pub fn summary(&self) -> String {
        STAT_NAMES
            .iter()
            .zip(&self.values)
            .filter_map(|(n, v)| {
                let v = v.load(Ordering::Relaxed);
                (v != 0).then(|| format!("{n} {v}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_indices() {
        assert_eq!(STAT_COUNT, 33);
        assert_eq!(STAT_NAMES[Stat::iotlb_hits as usize], "iotlb_hits");
        assert_eq!(STAT_NAMES[Stat::tx_uso_packets as usize], "tx_uso_packets");
        assert_eq!(STAT_NAMES[Stat::vmm_refused as usize], "vmm_refused");
        assert_eq!(
            STAT_NAMES[Stat::dma_map_refused as usize],
            "dma_map_refused"
        );
        let c = Counters::default();
        c.add(Stat::tx_bytes, 5);
        c.inc(Stat::tx_bytes);
        assert_eq!(c.get(Stat::tx_bytes), 6);
        assert_eq!(c.get_index(STAT_COUNT), None);
        assert_eq!(c.summary(), "tx_bytes 6");
        let snap = c.snapshot();
        assert_eq!(snap.len(), STAT_COUNT);
        assert_eq!(snap["tx_bytes"], 6);
        assert_eq!(snap["rx_bytes"], 0);
        c.clear();
        assert_eq!(c.get(Stat::tx_bytes), 0);
        c.inc(Stat::tx_bytes);
        assert_eq!(c.snapshot()["tx_bytes"], 1);
        assert_eq!(c.snapshot_total()["tx_bytes"], 7, "totals survive a reset");
    }
}
