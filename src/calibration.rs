//! Calibrating the chains' spread: a few chains of an approximate sampler agree more than the
//! posterior does, so their standard deviation understates the error of their mean — most of
//! all where y pins every chain to the same value (observed pixels, which still carry the
//! measurement's noise). Per (prior, restoration, sampler line) the calibrated standard
//! deviation is f·√(std² + floor²): `floor` stands for the error the chains all share, `f`
//! scales the rest, so that Gaussian intervals mean ± z·std_cal cover at their level on
//! held-out photos. Both are fitted on one half of the photos — f split-conformally, the 90%
//! quantile of |truth − mean| / (1.645·√(std² + floor²)), for the floor on a grid that brings
//! the calibrated variance closest to the squared error — and checked on the other half; the
//! model card keeps them with the photos they came from.

use crate::operators::Task;
use serde::{Deserialize, Serialize};

/// z of the central 90% and 95% Gaussian intervals.
pub const Z90: f64 = 1.644_853_6;
pub const Z95: f64 = 1.959_964;

/// One measured factor, as the model card stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadCalibration {
    pub task: Task,
    /// The sampler line it was measured with (as `Auto`'s table writes it).
    pub sampler: String,
    /// Chains it was fitted with: the spread of fewer chains is noisier.
    pub chains: usize,
    pub factor: f64,
    /// Added to the chains' std in quadrature before the factor (data units).
    #[serde(default)]
    pub floor: f64,
    /// The photos, size, σ_y and split it was fitted on.
    pub fitted_on: String,
    /// What the other half measured with it: coverage of the 90% and 95% intervals, and the
    /// calibrated variance's mean over the mean's squared error.
    pub checked: String,
}

/// Per-pixel error of the mean and standard deviation of the chains (n − 1 in the variance),
/// for `samples` [chains, d] against `truth` [d].
pub fn error_and_std(samples: &[f32], chains: usize, truth: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mean, variance) = crate::metrics::mean_variance(samples, chains);
    let unbiased = chains as f32 / (chains.max(2) - 1) as f32;
    let err = mean.iter().zip(truth).map(|(m, t)| m - t).collect();
    let std = variance.iter().map(|v| (v * unbiased).sqrt()).collect();
    (err, std)
}

/// The factor that makes 90% of |err| ≤ 1.645·f·√(std² + floor²) (the conformal quantile).
pub fn fit_factor(err: &[f32], std: &[f32], floor: f64) -> f64 {
    let mut z: Vec<f64> = err
        .iter()
        .zip(std)
        .map(|(e, s)| f64::from(e.abs()) / (Z90 * widened(*s, floor).max(1e-6)))
        .collect();
    if z.is_empty() {
        return 1.0;
    }
    z.sort_by(f64::total_cmp);
    // The ⌈0.9·(n + 1)⌉-th smallest: the split-conformal quantile.
    let k = ((0.9 * (z.len() + 1) as f64).ceil() as usize).clamp(1, z.len());
    z[k - 1]
}

/// (factor, floor) for two targets at once on this data: the 90% interval covering 90% and the
/// calibrated variance equal to the squared error. Errors have heavier tails than a Gaussian,
/// so the factor that covers exactly 90% leaves the variance short; the fit takes, over a grid
/// of floors (0 and 0.001 to 0.256 in doublings) and factors (the conformal one × 1 to 1.5),
/// the pair with the smallest ((coverage − 0.9)/0.05)² + (ln ratio / ln 1.4)² — each target
/// measured in the width the goals allow it.
pub fn fit(err: &[f32], std: &[f32]) -> (f64, f64) {
    let floors = std::iter::once(0.0).chain((0..9).map(|k| 0.001 * f64::from(1u32 << k)));
    let mut best = (1.0, 0.0, f64::INFINITY);
    for floor in floors {
        let base = fit_factor(err, std, floor);
        for k in 0..=10 {
            let f = base * (1.0 + 0.05 * f64::from(k));
            let (c90, _, ratio) = check(err, std, f, floor);
            let loss = ((c90 - 0.9) / 0.05).powi(2) + (ratio.max(1e-30).ln() / 1.4f64.ln()).powi(2);
            if loss < best.2 {
                best = (f, floor, loss);
            }
        }
    }
    (best.0, best.1)
}

/// √(std² + floor²).
pub fn widened(std: f32, floor: f64) -> f64 {
    (f64::from(std).powi(2) + floor * floor).sqrt()
}

/// What a factor and floor give on other data: (coverage of the 90% interval, of the 95%
/// interval, mean of the calibrated variance over the mean of err²).
pub fn check(err: &[f32], std: &[f32], factor: f64, floor: f64) -> (f64, f64, f64) {
    let n = err.len().max(1) as f64;
    let (mut in90, mut in95, mut var, mut sq) = (0usize, 0usize, 0.0f64, 0.0f64);
    for (e, s) in err.iter().zip(std) {
        let (e, s) = (f64::from(e.abs()), factor * widened(*s, floor));
        in90 += usize::from(e <= Z90 * s);
        in95 += usize::from(e <= Z95 * s);
        var += s * s;
        sq += e * e;
    }
    (in90 as f64 / n, in95 as f64 / n, var / sq.max(1e-30))
}

/// The card's factor for a restoration and the sampler that ran (`spec`, `Auto`'s choice
/// already resolved), if one was measured.
pub fn lookup<'a>(
    table: &'a [SpreadCalibration],
    task: Task,
    spec: &crate::samplers::SamplerSpec,
) -> Option<&'a SpreadCalibration> {
    table
        .iter()
        .find(|c| c.task == task && crate::samplers::parse(&c.sampler).is_ok_and(|s| s == *spec))
}

/// The prior's measured calibration for the restoration and the sampler that ran (`Auto` as
/// the line it chose, read from its detail).
pub fn for_run(
    problem: &crate::problem::Problem,
    spec: &crate::samplers::SamplerSpec,
    detail: Option<&str>,
) -> Option<SpreadCalibration> {
    use crate::samplers::{self, SamplerSpec};
    let ran = match spec {
        SamplerSpec::Auto(_) => {
            samplers::parse(detail.and_then(samplers::auto::chosen_in)?).ok()?
        }
        other => other.clone(),
    };
    lookup(
        problem.prior.spread_calibration(),
        problem.operator.task(),
        &ran,
    )
    .cloned()
}

impl SpreadCalibration {
    /// The calibrated variance of a pixel whose chains' variance (over n) is `var`.
    pub fn variance(&self, var: f32, chains: usize) -> f32 {
        let unbiased = chains as f32 / (chains.max(2) - 1) as f32;
        let std = (var.max(0.0) * unbiased).sqrt();
        (self.factor * widened(std, self.floor)).powi(2) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors drawn with twice the chains' std: the fitted factor is about 2 and then covers
    /// 90% and 95% at their levels, with a variance ratio near 1.
    #[test]
    fn a_spread_half_the_error_is_widened_twofold() {
        let mut rng = crate::tensor::rng(4);
        let n = 20_000;
        let std: Vec<f32> = (0..n).map(|i| 0.02 + 0.03 * (i % 7) as f32).collect();
        let draw = |rng: &mut crate::tensor::Rng| -> Vec<f32> {
            std.iter()
                .map(|s| {
                    use rand::RngExt;
                    let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                    let g = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    2.0 * s * g as f32
                })
                .collect()
        };
        let fit_set = draw(&mut rng);
        let (f, floor) = fit(&fit_set, &std);
        assert!((f - 2.0).abs() < 0.08 && floor <= 0.002, "{f} {floor}");
        let (c90, c95, ratio) = check(&draw(&mut rng), &std, f, floor);
        assert!((c90 - 0.90).abs() < 0.01, "{c90}");
        assert!((c95 - 0.95).abs() < 0.01, "{c95}");
        assert!((ratio - 1.0).abs() < 0.08, "{ratio}");
        let (raw90, _, _) = check(&fit_set, &std, 1.0, 0.0);
        assert!(raw90 < 0.65, "unscaled: {raw90}");
    }

    /// Chains that agree exactly where y pins them (std 0) but carry its noise there: the floor
    /// takes that error, and the intervals cover there too instead of needing a huge factor.
    #[test]
    fn pinned_pixels_get_a_floor_instead_of_a_huge_factor() {
        let mut rng = crate::tensor::rng(5);
        let n = 20_000;
        let normal = |rng: &mut crate::tensor::Rng| -> f32 {
            use rand::RngExt;
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            ((-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        };
        // A tenth of the pixels are holes (std 0.1, honest); the rest are pinned (std 0) with
        // an error of 0.008.
        let std: Vec<f32> = (0..n)
            .map(|i| if i % 10 == 0 { 0.1 } else { 0.0 })
            .collect();
        let err: Vec<f32> = (std.iter())
            .map(|s| if *s > 0.0 { *s } else { 0.008 } * normal(&mut rng))
            .collect();
        let (f, floor) = fit(&err, &std);
        let (c90, _, ratio) = check(&err, &std, f, floor);
        assert!(floor > 0.0 && f < 3.0, "factor {f}, floor {floor}");
        assert!((0.85..0.95).contains(&c90), "{c90}");
        assert!((0.7..1.4).contains(&ratio), "{ratio}");
    }
}
