//! Seeded shuffles and the train/test split of sources that have no test split of their own.

/// A splitmix64 stream: written here, not taken from a crate, so that a seed gives the same
/// numbers in every version (splits, procedural data).
pub struct SplitMix(u64);

impl SplitMix {
    /// A stream started at `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A uniform number in [0, 1) (53 bits).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 0..n shuffled by Fisher-Yates with a splitmix64 stream from `seed`.
pub fn shuffled(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = SplitMix::new(seed);
    let mut idx: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// The rows of `n` examples held out as the test set (a `fraction` of them, at least one when
/// the fraction is positive) and the rest, each in ascending order.
pub fn test_rows(n: usize, fraction: f64, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let held = if fraction > 0.0 {
        ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1))
    } else {
        0
    };
    let idx = shuffled(n, seed);
    let (mut test, mut train) = (idx[..held].to_vec(), idx[held..].to_vec());
    test.sort_unstable();
    train.sort_unstable();
    (test, train)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_a_partition_of_the_requested_size() {
        let (test, train) = test_rows(1000, 0.1, 3);
        assert_eq!(test.len(), 100);
        assert_eq!(train.len(), 900);
        let mut all: Vec<i64> = test.iter().chain(&train).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_ne!(test_rows(1000, 0.1, 4).0, test, "the seed chooses the rows");
        assert_eq!(test_rows(10, 0.0, 0).0.len(), 0);
    }

    #[test]
    fn uniform_draws_have_the_right_mean() {
        let mut r = SplitMix::new(1);
        let m: f64 = (0..100_000).map(|_| r.uniform()).sum::<f64>() / 100_000.0;
        assert!((m - 0.5).abs() < 0.005, "{m}");
    }
}
