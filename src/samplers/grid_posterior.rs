//! The exact posterior of a two-dimensional mixture prior under any measurement (nonlinear A,
//! photon noise): the prior density times the likelihood on a fine grid, normalised, and
//! sampled cell by cell (uniform within the chosen cell). Its error is the cell's size, a
//! thousandth of the prior's extent at the default 1024 cells a side.

use crate::error::{Error, Result};
use crate::priors::Gmm;
use crate::problem::Problem;
use crate::tensor::{self, Rng};
use rand::RngExt;

pub struct GridPosterior {
    /// [x_min, x_max] and [y_min, y_max] of the grid.
    bounds: [[f64; 2]; 2],
    n: usize,
    /// The cumulative posterior mass of the cells, row-major (first coordinate slowest).
    cdf: Vec<f64>,
}

/// Cells per side.
pub const GRID_SIDE: usize = 1024;
/// Points per batch through the operator.
const BATCH: usize = 1 << 16;

impl GridPosterior {
    pub fn new(problem: &Problem, gmm: &Gmm, n: usize) -> Result<Self> {
        if gmm.dim() != 2 || problem.dim() != 2 {
            return Err(Error::invalid(
                "Exact",
                "the grid posterior is for two-dimensional mixtures",
            ));
        }
        let bounds = extent(gmm);
        let grid = Self {
            bounds,
            n,
            cdf: vec![],
        };
        let points: Vec<[f64; 2]> = (0..n * n)
            .map(|c| [grid.centre(c / n, 0), grid.centre(c % n, 1)])
            .collect();
        let [ch, h, w] = problem.shape();
        let sy2 = problem.sigma_y * problem.sigma_y;
        let mut logp = Vec::with_capacity(points.len());
        for chunk in points.chunks(BATCH) {
            let flat: Vec<f64> = chunk.iter().flat_map(|p| [p[0], p[1]]).collect();
            let x = tensor::from_f64(&flat, [chunk.len(), ch, h, w], &problem.device);
            // misfit = σ_y² · deviance = −2σ_y² log p(y | x) + const.
            let misfit = tensor::to_f64(&problem.misfit(x))?;
            for (p, m) in chunk.iter().zip(misfit) {
                logp.push(gmm.noised_log_density(p, 0.0) - m / (2.0 * sy2));
            }
        }
        let top = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            return Err(Error::invalid(
                "Exact",
                "the posterior vanishes on the whole grid (y is far from anything the prior allows)",
            ));
        }
        let mut cdf = Vec::with_capacity(logp.len());
        let mut total = 0.0;
        for l in logp {
            total += (l - top).exp();
            cdf.push(total);
        }
        for v in &mut cdf {
            *v /= total;
        }
        Ok(Self { cdf, ..grid })
    }

    /// `count` independent draws.
    pub fn sample(&self, count: usize, rng: &mut Rng) -> Vec<[f64; 2]> {
        (0..count)
            .map(|_| {
                let u: f64 = rng.random();
                let cell = self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1);
                let (i, j) = (cell / self.n, cell % self.n);
                let mut at = |idx: usize, k: usize| {
                    let [lo, hi] = self.bounds[k];
                    let jitter: f64 = rng.random();
                    lo + (idx as f64 + jitter) * (hi - lo) / self.n as f64
                };
                let a = at(i, 0);
                [a, at(j, 1)]
            })
            .collect()
    }

    /// The posterior mass of each prior component's region (the cells it is most responsible
    /// for), the weights `metrics::mode_frequencies` reads off samples with the prior.
    pub fn mode_weights(&self, gmm: &Gmm) -> Vec<f64> {
        let mut out = vec![0.0; gmm.len()];
        let mut prev = 0.0;
        for (cell, c) in self.cdf.iter().enumerate() {
            let (i, j) = (cell / self.n, cell % self.n);
            let p = [self.centre(i, 0), self.centre(j, 1)];
            out[gmm.classify(&p)] += c - prev;
            prev = *c;
        }
        out
    }

    fn centre(&self, i: usize, k: usize) -> f64 {
        let [lo, hi] = self.bounds[k];
        lo + (i as f64 + 0.5) * (hi - lo) / self.n as f64
    }
}

/// The box holding every component to 7 standard deviations.
fn extent(gmm: &Gmm) -> [[f64; 2]; 2] {
    let mut b = [[f64::INFINITY, f64::NEG_INFINITY]; 2];
    for k in 0..gmm.len() {
        let (m, c) = (gmm.mean(k), gmm.cov(k));
        for (d, bd) in b.iter_mut().enumerate() {
            let reach = 7.0 * c.at(d, d).max(0.0).sqrt();
            bd[0] = bd[0].min(m[d] - reach);
            bd[1] = bd[1].max(m[d] + reach);
        }
    }
    b
}
