//! How the chains vary, and whether their spread can be trusted.
//!
//! - [`pca`]: principal directions of the centred chains, from the chains×chains Gram matrix
//!   (an image has up to millions of pixels, a run at most a few hundred chains), largest
//!   variance first, with each chain's coordinates so the window can find the chain nearest to a
//!   point along a direction.
//! - [`pixel_stats`]: per-pixel empirical 2.5% and 97.5% quantiles and, when the truth is known,
//!   the coverage of central credible intervals, the z² statistic, the CRPS and a surprise map.
//!
//! Quantile convention: Hyndman–Fan type 6, position p·(n + 1) among the n sorted draws (1-based),
//! linear in between, clamped to the extremes. With n exchangeable draws and a truth drawn from
//! the same law, the central interval of level L then covers the truth with probability L
//! exactly when (n + 1)(1 − L)/2 is whole (39 or 199 chains at 95%); numpy's default (type 7)
//! covers only (n − 1)L/(n + 1) and would make a calibrated sampler look over-confident. With
//! fewer than 2/(1 − L) − 1 chains a level's interval is the sample range, which covers at most
//! (n − 1)/(n + 1).

use crate::error::{Error, Result};
use crate::linalg::{Mat, sym_eigen_desc};
use rayon::prelude::*;

/// The central-interval levels whose coverage is reported.
pub const LEVELS: [f64; 4] = [0.5, 0.8, 0.9, 0.95];
/// Principal components computed when the user does not ask for a number.
pub const DEFAULT_COMPONENTS: usize = 16;
/// Pixels whose chains agree to this standard deviation carry no spread to judge: z² leaves
/// them out (seen pixels of noise-free inpainting).
const MIN_STD: f64 = 1e-5;

/// Principal components of a set of chains.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub dim: usize,
    pub chains: usize,
    /// [K, d]: orthonormal directions, largest variance first (all-zero where the chains span
    /// fewer than K directions, with variance 0).
    pub components: Vec<f32>,
    /// Variance of the chains along each direction (divisor chains − 1).
    pub variances: Vec<f64>,
    /// Sum over pixels of the chains' variance (divisor chains − 1): what fractions are of.
    pub total_variance: f64,
    /// [chains, K]: each centred chain's coordinate along each direction.
    pub scores: Vec<f64>,
    /// ‖x_j − mean‖² of each chain.
    pub chain_dist_sq: Vec<f64>,
}

impl Pca {
    pub fn k(&self) -> usize {
        self.variances.len()
    }

    pub fn component(&self, i: usize) -> &[f32] {
        &self.components[i * self.dim..(i + 1) * self.dim]
    }

    /// The fraction of the total variance along each direction.
    pub fn explained(&self) -> Vec<f64> {
        let total = self.total_variance.max(f64::MIN_POSITIVE);
        self.variances.iter().map(|v| v / total).collect()
    }

    /// mean + t·√λᵢ·vᵢ: the picture `t` standard deviations along direction `i`.
    pub fn along(&self, mean: &[f32], i: usize, t: f64) -> Vec<f32> {
        let s = (t * self.variances[i].sqrt()) as f32;
        mean.iter()
            .zip(self.component(i))
            .map(|(m, v)| m + s * v)
            .collect()
    }

    /// The chain among the first `among` nearest (Euclidean) to mean + t·√λᵢ·vᵢ, and its RMS
    /// distance per pixel: from the chains' coordinates, without touching the pictures.
    pub fn nearest_chain(&self, i: usize, t: f64, among: usize) -> Option<(usize, f64)> {
        let k = self.k();
        let lambda = self.variances[i];
        (0..self.chains.min(among))
            .map(|j| {
                let s = self.scores[j * k + i];
                let d2 = self.chain_dist_sq[j] - 2.0 * t * lambda.sqrt() * s + t * t * lambda;
                (j, (d2.max(0.0) / self.dim.max(1) as f64).sqrt())
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Checks a requested number of components against the number of chains.
pub fn check_components(k: usize, chains: usize) -> Result<()> {
    if chains < 2 && k > 0 {
        return Err(Error::invalid(
            "principal components",
            format!(
                "a run of {chains} chain has no spread to analyse: use at least 2 chains \
                 (K ≤ chains − 1)"
            ),
        ));
    }
    if k > chains.saturating_sub(1) {
        return Err(Error::invalid(
            "principal components",
            format!(
                "K = {k} is more than chains − 1 = {}: the centred chains span at most that \
                 many directions; ask for fewer components or run more chains",
                chains - 1
            ),
        ));
    }
    Ok(())
}

/// The top `k` principal components of `samples` ([chains, d] flattened), exactly: from the
/// chains×chains Gram matrix XcXcᵀ mapped back through Xcᵀ when there are fewer chains than
/// pixels (images), else from the d×d covariance (small problems, many chains). One matrix
/// product on the CPU backend and a symmetric eigendecomposition of the smaller side.
pub fn pca(samples: &[f32], chains: usize, k: usize) -> Result<Pca> {
    check_components(k, chains)?;
    let d = samples.len().checked_div(chains).unwrap_or(0);
    if chains == 0 || d * chains != samples.len() {
        return Err(Error::shape(
            "samples for principal components",
            format!("[{chains}, d]"),
            samples.len(),
        ));
    }
    let k = k.min(d);
    let mean = column_mean(samples, chains, d);
    let device = burn::tensor::Device::flex();
    let divisor = (chains - 1).max(1) as f64;
    // (eigenvalues of XcᵀXc, [k, d] unit directions, [chains, k] coordinates, ‖x_j − mean‖²)
    let (lambda, mut components, mut scores, dist_sq) = if chains <= d {
        // The chains × chains Gram matrix and the directions straight from the samples: no
        // centred copy (a 4-chain 16-megapixel set is 800 MB).
        let gram = Mat::from_rows(chains, chains, centred_gram(samples, &mean, chains, d));
        let (lambda, u) = sym_eigen_desc(&gram);
        let floor = noise_floor(&lambda);
        let mut uk = vec![0.0f64; k * chains];
        let mut scores = vec![0.0; chains * k];
        for i in (0..k).filter(|&i| lambda[i] > floor) {
            for j in 0..chains {
                uk[i * chains + j] = u.at(j, i) / lambda[i].sqrt();
                // Xc vᵢ = XcXcᵀuᵢ/√λᵢ = √λᵢ uᵢ.
                scores[j * k + i] = lambda[i].sqrt() * u.at(j, i);
            }
        }
        let components = centred_combinations(samples, &mean, &uk, k, chains, d);
        let dist = (0..chains).map(|j| gram.at(j, j)).collect();
        (lambda, components, scores, dist)
    } else {
        let mut centred = vec![0.0f32; samples.len()];
        centred
            .par_chunks_mut(d)
            .zip(samples.par_chunks(d))
            .for_each(|(c, row)| {
                for ((c, x), m) in c.iter_mut().zip(row).zip(&mean) {
                    *c = (f64::from(*x) - m) as f32;
                }
            });
        let xc = crate::tensor::from_vec(centred, [chains, d], &device);
        let cov = crate::tensor::to_vec(&xc.clone().transpose().matmul(xc.clone()))?;
        let cov = Mat::from_rows(d, d, cov.into_iter().map(f64::from).collect());
        let (lambda, w) = sym_eigen_desc(&cov);
        let floor = noise_floor(&lambda);
        let mut components = vec![0.0f32; k * d];
        for i in (0..k).filter(|&i| lambda[i] > floor) {
            for r in 0..d {
                components[i * d + r] = w.at(r, i) as f32;
            }
        }
        let scores = if k > 0 {
            let wk = crate::tensor::from_vec(components.clone(), [k, d], &device);
            crate::tensor::to_vec(&xc.clone().matmul(wk.transpose()))?
                .into_iter()
                .map(f64::from)
                .collect()
        } else {
            vec![]
        };
        let dist = crate::tensor::to_vec(&xc.square().sum_dim(1))?
            .into_iter()
            .map(f64::from)
            .collect();
        (lambda, components, scores, dist)
    };
    let total = lambda.iter().map(|l| l.max(0.0)).sum::<f64>();
    let floor = noise_floor(&lambda);
    let mut variances = vec![0.0; k];
    for i in (0..k).filter(|&i| lambda[i] > floor) {
        variances[i] = lambda[i] / divisor;
        // One sign per direction, whatever the solver returned: the largest entry positive.
        let v = &mut components[i * d..(i + 1) * d];
        let big = v
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(0.0);
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
            for j in 0..chains {
                scores[j * k + i] = -scores[j * k + i];
            }
        }
    }
    Ok(Pca {
        dim: d,
        chains,
        components,
        variances,
        total_variance: total / divisor,
        scores,
        chain_dist_sq: dist_sq,
    })
}

/// Eigenvalues below this are rounding noise of the f32 product, not directions.
fn noise_floor(lambda: &[f64]) -> f64 {
    1e-9 * lambda.first().copied().unwrap_or(0.0).max(0.0) + f64::MIN_POSITIVE
}

/// Σ_p (x_i[p] − m[p])(x_j[p] − m[p]) for every pair of chains, row-major, in f64.
fn centred_gram(samples: &[f32], mean: &[f64], chains: usize, d: usize) -> Vec<f64> {
    const BLOCK: usize = 4096;
    let mut g = (0..d.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (start, end) = (b * BLOCK, ((b + 1) * BLOCK).min(d));
            let mut g = vec![0.0f64; chains * chains];
            let mut x = vec![0.0f64; chains];
            for p in start..end {
                for (j, v) in x.iter_mut().enumerate() {
                    *v = f64::from(samples[j * d + p]) - mean[p];
                }
                for i in 0..chains {
                    for j in i..chains {
                        g[i * chains + j] += x[i] * x[j];
                    }
                }
            }
            g
        })
        .reduce(
            || vec![0.0f64; chains * chains],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    // Only the upper triangle was summed.
    for i in 0..chains {
        for j in 0..i {
            g[i * chains + j] = g[j * chains + i];
        }
    }
    g
}

/// [k, d]: row i is Σ_j w[i, j]·(x_j − m).
fn centred_combinations(
    samples: &[f32],
    mean: &[f64],
    w: &[f64],
    k: usize,
    chains: usize,
    d: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; k * d];
    out.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        let wi = &w[i * chains..(i + 1) * chains];
        row.par_chunks_mut(4096).enumerate().for_each(|(b, r)| {
            let start = b * 4096;
            for (q, v) in r.iter_mut().enumerate() {
                let p = start + q;
                let m = mean[p];
                let mut acc = 0.0f64;
                for (j, wj) in wi.iter().enumerate() {
                    acc += wj * (f64::from(samples[j * d + p]) - m);
                }
                *v = acc as f32;
            }
        });
    });
    out
}

/// Per-pixel mean over chains in f64, in parallel over blocks of pixels.
fn column_mean(samples: &[f32], chains: usize, d: usize) -> Vec<f64> {
    const BLOCK: usize = 4096;
    let mut mean = vec![0.0f64; d];
    mean.par_chunks_mut(BLOCK).enumerate().for_each(|(b, m)| {
        let (start, len) = (b * BLOCK, m.len());
        for row in samples.chunks(d).take(chains) {
            for (acc, x) in m.iter_mut().zip(&row[start..start + len]) {
                *acc += f64::from(*x);
            }
        }
        m.iter_mut().for_each(|v| *v /= chains as f64);
    });
    mean
}

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

    #[test]
    fn bad_component_counts_are_refused() {
        assert!(check_components(3, 1).is_err());
        assert!(check_components(16, 16).is_err());
        assert!(check_components(15, 16).is_ok());
        assert!(check_components(0, 1).is_ok());
        let msg = pca(&[0.0; 8], 2, 4).unwrap_err().to_string();
        assert!(msg.contains("chains − 1"), "{msg}");
    }

    #[test]
    fn pca_of_points_on_a_line_finds_the_line() {
        // Chains x_j = m + a_j·u with u a unit vector: one direction, all the variance.
        let d = 6;
        let u = [0.5f32, -0.5, 0.5, -0.5, 0.0, 0.0];
        let a = [-2.0f32, -1.0, 0.5, 1.0, 1.5];
        let samples: Vec<f32> = a
            .iter()
            .flat_map(|aj| u.iter().enumerate().map(move |(i, ui)| i as f32 + aj * ui))
            .collect();
        let p = pca(&samples, a.len(), 3).unwrap();
        let mean_a = a.iter().sum::<f32>() / 5.0;
        let var: f64 = a.iter().map(|x| f64::from(x - mean_a).powi(2)).sum::<f64>() / 4.0;
        assert!((p.variances[0] - var).abs() < 1e-5, "{:?}", p.variances);
        assert_eq!(&p.variances[1..], &[0.0, 0.0]);
        assert!((p.explained()[0] - 1.0).abs() < 1e-5);
        let dot: f32 = p.component(0).iter().zip(&u).map(|(x, y)| x * y).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-5);
        assert!(p.component(1).iter().all(|v| *v == 0.0));
        // The chain nearest to mean + t·√λ·v is the one at that coordinate.
        let t = f64::from(1.5 - mean_a) / var.sqrt() * f64::from(dot.signum());
        assert_eq!(p.nearest_chain(0, t, 5).map(|c| c.0), Some(4));
        let along = p.along(
            &column_mean(&samples, 5, d)
                .iter()
                .map(|v| *v as f32)
                .collect::<Vec<_>>(),
            0,
            t,
        );
        for (x, y) in along.iter().zip(&samples[4 * d..]) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
