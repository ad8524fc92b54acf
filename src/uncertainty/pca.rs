//! Principal directions of the centred chains (see the module notes).

use crate::error::{Error, Result};
use crate::linalg::{Mat, sym_eigen_desc};
use rayon::prelude::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
