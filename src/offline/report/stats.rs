//! Intervals the scorecard states its figures with.

use serde::Serialize;

/// The 97.5th percentile of the standard normal distribution: a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A figure and its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    /// Where the interval lies against `threshold`.
    pub fn against(&self, threshold: f64) -> Position {
        if self.low >= threshold {
            Position::Above
        } else if self.high < threshold {
            Position::Below
        } else {
            Position::Straddles
        }
    }
}

/// An interval against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// The whole interval is at or above it.
    Above,
    /// The whole interval is below it.
    Below,
    /// The threshold lies inside the interval: the sample cannot tell.
    Straddles,
}

/// The share `k / n` with its 95 % Wilson score interval; `None` when `n` is 0.
pub fn wilson(k: u64, n: u64) -> Option<Estimate> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(Estimate {
        value: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// Running sums of scores, for a mean and its interval without keeping the scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub n: u64,
    sum: f64,
    sum_sq: f64,
}

impl Scores {
    pub fn add(&mut self, score: u8) {
        let s = f64::from(score);
        self.n += 1;
        self.sum += s;
        self.sum_sq += s * s;
    }

    /// The mean with a 95 % normal-approximation interval (mean ± z·s/√n, s the sample
    /// standard deviation), clamped to `lo..=hi`; `None` below two scores.
    pub fn mean(&self, lo: f64, hi: f64) -> Option<Estimate> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let half = Z95 * (var / n).sqrt();
        Some(Estimate {
            value: mean,
            low: (mean - half).max(lo),
            high: (mean + half).min(hi),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81 of 263 → 0.2553 to 0.3662.
        let e = wilson(81, 263).unwrap();
        assert!((e.low - 0.2553).abs() < 5e-4, "{e:?}");
        assert!((e.high - 0.3662).abs() < 5e-4, "{e:?}");
        // 0 of 10 → 0 to 0.2775; 10 of 10 → 0.7225 to 1.
        let e = wilson(0, 10).unwrap();
        assert_eq!(e.low, 0.0);
        assert!((e.high - 0.2775).abs() < 5e-4, "{e:?}");
        let e = wilson(10, 10).unwrap();
        assert!((e.low - 0.7225).abs() < 5e-4, "{e:?}");
        assert!((e.high - 1.0).abs() < 1e-12, "{e:?}");
        assert!(wilson(0, 0).is_none());
    }

    #[test]
    fn positions_against_a_threshold() {
        let e = wilson(18, 20).unwrap();
        assert_eq!(e.against(0.5), Position::Above);
        assert_eq!(e.against(0.8), Position::Straddles);
        assert_eq!(e.against(0.99), Position::Below);
    }

    #[test]
    fn mean_and_interval_of_scores() {
        let mut s = Scores::default();
        for x in [4, 5, 3, 5] {
            s.add(x);
        }
        let e = s.mean(1.0, 5.0).unwrap();
        assert!((e.value - 4.25).abs() < 1e-12);
        // s = 0.9574, half = 1.96 * 0.9574 / 2 = 0.9382
        assert!((e.high - 5.0).abs() < 1e-12);
        assert!((e.low - (4.25 - 0.938_254)).abs() < 1e-4, "{e:?}");
    }
}
