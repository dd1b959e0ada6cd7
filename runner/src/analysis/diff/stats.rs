//! Telling a change from run-to-run noise: the rule `rsslab diff` applies to each key number.
//!
//! A number is compared as the set of values its repeats measured on each side (one value per
//! run; `rsslab run --repeat N` gives N). It has changed when both hold:
//!
//! - **the effect is larger than a floor**: the means differ by more than
//!   [`EFFECT_FLOOR_BYTES`] and more than [`EFFECT_RATIO`] of the baseline's mean (a change of a
//!   few pages is never worth a postmortem);
//! - **it is not noise**: with at least two runs on each side, Welch's t-test (unequal
//!   variances) gives a two-sided p below [`ALPHA`]; with a single run on either side there is
//!   no estimate of the noise, so the change must instead exceed the wider single-run floor
//!   ([`SINGLE_RUN_FLOOR_BYTES`], [`SINGLE_RUN_RATIO`]) and lie outside the other side's range.
//!
//! The thresholds are what this lab's own repeats show under TCG: deterministic sizes (a heap's
//! RSS) repeat to the page, while reclaim under a balloon varies by ±20% from run to run.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Significance level of Welch's t-test.
pub const ALPHA: f64 = 0.01;
/// Smallest change of a mean that counts, in bytes.
pub const EFFECT_FLOOR_BYTES: f64 = 4.0 * MIB;
/// Smallest change that counts, as a share of the baseline's mean.
pub const EFFECT_RATIO: f64 = 0.05;
/// With one run on a side: smallest change that counts, in bytes ...
pub const SINGLE_RUN_FLOOR_BYTES: f64 = 8.0 * MIB;
/// ... and as a share of the baseline.
pub const SINGLE_RUN_RATIO: f64 = 0.25;

const MIB: f64 = rsslab_wire::units::MIB as f64;

/// How the values of one number compare between the baseline and the new runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub baseline_mean: f64,
    pub new_mean: f64,
    /// Welch's two-sided p, when both sides have two runs or more.
    pub p: Option<f64>,
    /// Beyond the effect floor and not noise, by the rule above.
    pub changed: bool,
}

/// Compares `baseline` with `new` (each non-empty).
pub fn shift(baseline: &[f64], new: &[f64]) -> Shift {
    let (baseline_mean, new_mean) = (mean(baseline), mean(new));
    let delta = (new_mean - baseline_mean).abs();
    let floor = EFFECT_FLOOR_BYTES.max(EFFECT_RATIO * baseline_mean.abs());
    if baseline.len() >= 2 && new.len() >= 2 {
        let p = welch_p(baseline, new);
        return Shift {
            baseline_mean,
            new_mean,
            p: Some(p),
            changed: delta > floor && p < ALPHA,
        };
    }
    let single_floor = SINGLE_RUN_FLOOR_BYTES.max(SINGLE_RUN_RATIO * baseline_mean.abs());
    let outside = |values: &[f64], value: f64| {
        let (low, high) = range(values);
        value < low || value > high
    };
    Shift {
        baseline_mean,
        new_mean,
        p: None,
        changed: delta > floor
            && delta > single_floor
            && outside(baseline, new_mean)
            && outside(new, baseline_mean),
    }
}

/// Welch's t-test, two-sided p. Two constant samples: 1 when their means are equal, else 0
/// (no variance: any difference is real).
pub fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    let (va, vb) = (variance(a) / a.len() as f64, variance(b) / b.len() as f64);
    let diff = mean(a) - mean(b);
    let se2 = va + vb;
    if se2 == 0.0 {
        return if diff == 0.0 { 1.0 } else { 0.0 };
    }
    let t = diff / se2.sqrt();
    // Welch–Satterthwaite degrees of freedom.
    let df = se2 * se2
        / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0))
            .max(f64::MIN_POSITIVE);
    let dist = StudentsT::new(0.0, 1.0, df.max(1.0)).expect("df >= 1 is a valid t distribution");
    (2.0 * dist.sf(t.abs())).min(1.0)
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance (n − 1); 0 for one value.
fn variance(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)
}

/// (min, max).
pub fn range(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::MAX, f64::MIN), |(low, high), &v| {
        (low.min(v), high.max(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_textbook_value() {
        // Two samples with unequal variances; scipy.stats.ttest_ind(a, b, equal_var=False)
        // gives t = -2.0740, df = 10.209, p = 0.064280.
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
        let b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7];
        let p = welch_p(&a, &b);
        assert!((p - 0.064280).abs() < 1e-5, "p = {p}");
        // scipy: p = 0.90660 (t = -0.125, df = 3.967).
        let p = welch_p(&[81.0, 112.0, 99.0], &[94.0, 118.0, 85.0]);
        assert!((p - 0.90660).abs() < 1e-4, "p = {p}");
        assert_eq!(welch_p(&[5.0, 5.0], &[5.0, 5.0]), 1.0);
        assert_eq!(welch_p(&[5.0, 5.0], &[6.0, 6.0]), 0.0);
    }

    #[test]
    fn repeats_separate_a_change_from_noise() {
        let m = MIB;
        // A heap that stays at 401MiB where it fell to 51MiB: a change.
        let moved = shift(
            &[51.0 * m, 51.1 * m, 50.9 * m],
            &[401.0 * m, 400.8 * m, 401.1 * m],
        );
        assert!(moved.changed && moved.p.unwrap() < ALPHA, "{moved:?}");
        // Reclaim that scatters by ±20% on both sides: noise.
        let noisy = shift(
            &[81.0 * m, 112.0 * m, 99.0 * m],
            &[94.0 * m, 118.0 * m, 85.0 * m],
        );
        assert!(!noisy.changed, "{noisy:?}");
        // Significant but tiny: below the effect floor.
        let tiny = shift(&[100.0 * m, 100.0 * m], &[102.0 * m, 102.0 * m]);
        assert!(!tiny.changed, "{tiny:?}");
    }

    #[test]
    fn a_single_run_needs_the_wider_floor() {
        let m = MIB;
        assert!(
            !shift(&[100.0 * m], &[120.0 * m]).changed,
            "20% of one run: maybe noise"
        );
        let big = shift(&[100.0 * m], &[140.0 * m]);
        assert!(big.changed && big.p.is_none(), "{big:?}");
        assert!(
            !shift(&[100.0 * m, 150.0 * m], &[140.0 * m]).changed,
            "inside the baseline's own range"
        );
        assert!(!shift(&[2.0 * m], &[6.0 * m]).changed, "3x, but only 4MiB");
    }
}
