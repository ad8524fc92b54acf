//! Per-pixel intervals and, with the truth, their coverage, z² and CRPS (see the module
//! notes for the quantile convention).

use super::LEVELS;
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Pixels whose chains agree to this standard deviation carry no spread to judge: z² leaves
/// them out (seen pixels of noise-free inpainting).
const MIN_STD: f64 = 1e-5;

/// Per-pixel intervals and, when the truth is known, how well they cover it.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelStats {
    /// 2.5% and 97.5% quantiles per pixel.
    pub lower: Vec<f32>,
    pub upper: Vec<f32>,
    pub calibration: Option<Calibration>,
}

/// How the chains' spread compares with a known truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Over every pixel value.
    pub all: RegionFigures,
    /// Over the pixels the operator does not see (None when it sees every pixel).
    pub unseen: Option<RegionFigures>,
    /// Per pixel value: the fair CRPS, and whether the truth lies outside the 95% interval.
    pub crps_map: Vec<f32>,
    pub surprise: Vec<bool>,
}

/// Calibration figures over one set of pixel values.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionFigures {
    pub values: usize,
    /// (level, fraction of values whose truth lies in the central interval of that level).
    pub coverage: Vec<(f64, f64)>,
    /// Mean of (truth − mean)² / ((1 + 1/n)·s²), s² the chains' variance (divisor n − 1):
    /// about 1 when calibrated, above 1 when over-confident. Values whose chains agree to 1e-5
    /// are left out (None if that is all of them).
    pub z2: Option<f64>,
    /// Mean of the ensemble CRPS (the fair, unbiased form; data units).
    pub crps: f64,
}

/// What one pixel's chains say.
struct PixelFigures {
    lower: f32,
    upper: f32,
    covered: [bool; LEVELS.len()],
    z2: Option<f64>,
    crps: f64,
}

/// Intervals and calibration of `samples` ([chains, d]); `truth` [d] when known, `seen` [d]
/// (false where the operator hides a pixel) for the unseen-pixel coverage.
pub fn pixel_stats(
    samples: &[f32],
    chains: usize,
    truth: Option<&[f32]>,
    seen: Option<&[bool]>,
) -> Result<PixelStats> {
    let d = samples.len().checked_div(chains).unwrap_or(0);
    if chains == 0 || d * chains != samples.len() {
        return Err(Error::shape(
            "samples for intervals",
            format!("[{chains}, d]"),
            samples.len(),
        ));
    }
    if let Some(t) = truth
        && t.len() != d
    {
        return Err(Error::shape("truth for calibration", d, t.len()));
    }
    // Each block of pixels writes its quantiles (and CRPS and surprise) in place and returns
    // its sums over the regions: no per-pixel record is kept, so the figures of a large photo
    // cost 3 floats per value beyond the samples.
    const BLOCK: usize = 256;
    let mut lower = vec![0.0f32; d];
    let mut upper = vec![0.0f32; d];
    // Without a truth the two maps stay unused (5 bytes a value, dropped at the end).
    let mut crps_map = vec![0.0f32; d];
    let mut surprise = vec![false; d];
    let seen = seen.filter(|s| s.len() == d && s.iter().any(|v| !v));
    let sums = lower
        .par_chunks_mut(BLOCK)
        .zip(upper.par_chunks_mut(BLOCK))
        .zip(crps_map.par_chunks_mut(BLOCK))
        .zip(surprise.par_chunks_mut(BLOCK))
        .enumerate()
        .map(|(b, (((lo, hi), crps), surp))| {
            let start = b * BLOCK;
            let len = lo.len();
            // Gather the block's columns pixel by pixel: [len, chains].
            let mut cols = vec![0.0f64; len * chains];
            for j in 0..chains {
                let row = &samples[j * d + start..j * d + start + len];
                for (p, v) in row.iter().enumerate() {
                    cols[p * chains + j] = f64::from(*v);
                }
            }
            let mut sums = [RegionSums::default(), RegionSums::default()];
            for p in 0..len {
                let col = &mut cols[p * chains..(p + 1) * chains];
                col.sort_by(f64::total_cmp);
                let f = pixel_figures(col, truth.map(|t| f64::from(t[start + p])));
                lo[p] = f.lower;
                hi[p] = f.upper;
                crps[p] = f.crps as f32;
                surp[p] = !f.covered[LEVELS.len() - 1];
                sums[0].add(&f);
                if seen.is_some_and(|s| !s[start + p]) {
                    sums[1].add(&f);
                }
            }
            sums
        })
        .reduce(
            || [RegionSums::default(), RegionSums::default()],
            |[a0, a1], [b0, b1]| [a0.merge(b0), a1.merge(b1)],
        );
    let [all, unseen] = sums;
    let calibration = truth.map(|_| Calibration {
        // d ≥ 1: every run has at least one pixel value.
        all: all.figures().unwrap_or(RegionFigures {
            values: 0,
            coverage: vec![],
            z2: None,
            crps: f64::NAN,
        }),
        unseen: seen.and_then(|_| unseen.figures()),
        crps_map,
        surprise,
    });
    Ok(PixelStats {
        lower,
        upper,
        calibration,
    })
}

/// Sums of pixel figures over a region, merged across blocks.
#[derive(Default, Clone, Copy)]
struct RegionSums {
    values: usize,
    covered: [usize; LEVELS.len()],
    z2_sum: f64,
    z2_values: usize,
    crps_sum: f64,
}

impl RegionSums {
    fn add(&mut self, f: &PixelFigures) {
        self.values += 1;
        for (n, c) in self.covered.iter_mut().zip(f.covered) {
            *n += usize::from(c);
        }
        if let Some(z) = f.z2 {
            self.z2_sum += z;
            self.z2_values += 1;
        }
        self.crps_sum += f.crps;
    }

    fn merge(mut self, o: Self) -> Self {
        self.values += o.values;
        for (n, m) in self.covered.iter_mut().zip(o.covered) {
            *n += m;
        }
        self.z2_sum += o.z2_sum;
        self.z2_values += o.z2_values;
        self.crps_sum += o.crps_sum;
        self
    }

    fn figures(&self) -> Option<RegionFigures> {
        if self.values == 0 {
            return None;
        }
        let n = self.values as f64;
        Some(RegionFigures {
            values: self.values,
            coverage: (LEVELS.iter().zip(self.covered))
                .map(|(level, hits)| (*level, hits as f64 / n))
                .collect(),
            z2: (self.z2_values > 0).then(|| self.z2_sum / self.z2_values as f64),
            crps: self.crps_sum / n,
        })
    }
}

fn pixel_figures(sorted: &[f64], truth: Option<f64>) -> PixelFigures {
    let n = sorted.len();
    let mut covered = [false; LEVELS.len()];
    let (mut z2, mut crps) = (None, 0.0);
    if let Some(t) = truth {
        for (l, level) in LEVELS.iter().enumerate() {
            let lo = quantile(sorted, (1.0 - level) / 2.0);
            let hi = quantile(sorted, (1.0 + level) / 2.0);
            covered[l] = lo <= t && t <= hi;
        }
        crps = crps_sorted(sorted, t);
        if n >= 2 {
            let mean = sorted.iter().sum::<f64>() / n as f64;
            let var = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            if var.sqrt() > MIN_STD {
                z2 = Some((t - mean).powi(2) / (var * (1.0 + 1.0 / n as f64)));
            }
        }
    }
    PixelFigures {
        lower: quantile(sorted, 0.025) as f32,
        upper: quantile(sorted, 0.975) as f32,
        covered,
        z2,
        crps,
    }
}

/// The type-6 empirical quantile of sorted draws (see the module notes).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (p * (n + 1) as f64 - 1.0).clamp(0.0, (n - 1) as f64);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The fair ensemble CRPS of sorted draws at `t`: mean |xᵢ − t| − Σᵢⱼ|xᵢ − xⱼ| / (2n(n − 1)),
/// an unbiased estimate of the CRPS of the law the draws come from.
pub fn crps_sorted(sorted: &[f64], t: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let abs_err = sorted.iter().map(|x| (x - t).abs()).sum::<f64>() / n as f64;
    if n == 1 {
        return abs_err;
    }
    // Σᵢⱼ |xᵢ − xⱼ| = 2 Σᵢ (2i − n + 1) x₍ᵢ₎ for sorted x (0-based i).
    let spread: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * i as f64 - n as f64 + 1.0) * x)
        .sum::<f64>()
        * 2.0;
    abs_err - spread / (2.0 * n as f64 * (n - 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_convention_is_type_6() {
        let s: Vec<f64> = (1..=39).map(f64::from).collect();
        // (n + 1)·0.025 = 1: the smallest draw; (n + 1)·0.975 = 39: the largest.
        assert_eq!(quantile(&s, 0.025), 1.0);
        assert_eq!(quantile(&s, 0.975), 39.0);
        assert_eq!(quantile(&s, 0.5), 20.0);
        assert!((quantile(&s, 0.1) - 4.0).abs() < 1e-12);
        assert_eq!(quantile(&[3.0], 0.9), 3.0);
    }

    #[test]
    fn crps_of_a_point_mass_is_the_absolute_error_and_the_pairwise_sum_is_exact() {
        assert_eq!(crps_sorted(&[2.0], 5.0), 3.0);
        let s = [-1.0f64, 0.5, 2.0, 4.0];
        let direct: f64 = s
            .iter()
            .flat_map(|a| s.iter().map(move |b| (a - b).abs()))
            .sum();
        let abs = s.iter().map(|x| (x - 1.0f64).abs()).sum::<f64>() / 4.0;
        let want = abs - direct / (2.0 * 4.0 * 3.0);
        assert!((crps_sorted(&s, 1.0) - want).abs() < 1e-12);
    }
}
