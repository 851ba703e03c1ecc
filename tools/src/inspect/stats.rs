//! Size statistics (min, mean, p50, p99, max) over a list of byte lengths.

use serde::Serialize;

/// Statistics of a set of sizes in bytes; percentiles are nearest-rank.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeStats {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl SizeStats {
    /// `None` for an empty list.
    pub fn of(mut sizes: Vec<u64>) -> Option<SizeStats> {
        if sizes.is_empty() {
            return None;
        }
        sizes.sort_unstable();
        let n = sizes.len();
        let rank = |p: usize| sizes[(p * n).div_ceil(100).max(1) - 1];
        Some(SizeStats {
            min: sizes[0],
            mean: sizes.iter().sum::<u64>() as f64 / n as f64,
            p50: rank(50),
            p99: rank(99),
            max: sizes[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SizeStats;

    #[test]
    fn nearest_rank() {
        let s = SizeStats::of((1..=100).collect()).unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max), (1, 50, 99, 100));
        assert!((s.mean - 50.5).abs() < 1e-9);
        let one = SizeStats::of(vec![7]).unwrap();
        assert_eq!((one.min, one.p50, one.p99, one.max), (7, 7, 7, 7));
        assert_eq!(SizeStats::of(Vec::new()), None);
    }
}
