//! How y's noise lies around A(x): Gaussian (σ_y, the default) or photon counting.
//!
//! With `Poisson(peak: P)` a value z = A(x) ∈ [−1, 1] is a mean count λ = P(z + 1)/2 (P the
//! expected count of a white value), the sensor counts k ~ Poisson(λ), and y = 2k/P − 1 is
//! that count brought back to the data scale, plus Gaussian read noise of `noise_sigma` (0:
//! none). The likelihood with read noise uses the shifted-Poisson approximation (k + s² is
//! treated as Poisson(λ + s²), s the read noise in counts: exact for s = 0, and matching the
//! first two moments otherwise). Below half a photon, λ + s² is held at ½ so a chain that
//! strays below black keeps a bounded pull back.

use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum NoiseModel {
    #[default]
    Gaussian,
    Poisson {
        peak: f64,
    },
}

/// t plus Gaussian noise of σ drawn from `rng` (the Gaussian model's whole simulation).
pub fn add_gaussian(t: Tensor<4>, sigma: f64, rng: &mut tensor::Rng) -> Tensor<4> {
    let noise = tensor::normal(rng, t.dims(), &t.device());
    t + noise.mul_scalar(sigma)
}

/// The smallest λ + s² the likelihood is evaluated at, in counts.
const FLOOR_COUNTS: f64 = 0.5;

impl NoiseModel {
    pub fn is_gaussian(&self) -> bool {
        matches!(self, NoiseModel::Gaussian)
    }

    pub fn check(&self) -> Result<()> {
        match *self {
            NoiseModel::Poisson { peak } if !(peak.is_finite() && peak > 0.0) => {
                Err(Error::invalid(
                    "noise_model",
                    format!("Poisson's peak must be a positive count, got {peak}"),
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn label(&self) -> String {
        match self {
            NoiseModel::Gaussian => "Gaussian noise".into(),
            NoiseModel::Poisson { peak } => format!("photon noise (peak {peak})"),
        }
    }

    /// y from the noiseless A(x) with the given read (Gaussian) σ and seed.
    pub fn simulate(
        &self,
        clean: Tensor<4>,
        sigma: f64,
        rng: &mut tensor::Rng,
    ) -> Result<Tensor<4>> {
        let device = clean.device();
        let dims = clean.dims();
        let counted = match *self {
            NoiseModel::Gaussian => clean,
            NoiseModel::Poisson { peak } => {
                use rand_distr::Distribution;
                let values = tensor::to_vec(&clean)?;
                let mut out = Vec::with_capacity(values.len());
                for z in values {
                    let lambda = (peak * (f64::from(z) + 1.0) / 2.0).max(0.0);
                    let k = if lambda > 0.0 {
                        rand_distr::Poisson::new(lambda)
                            .map_err(|e| Error::invalid("noise_model", format!("{e}")))?
                            .sample(rng)
                    } else {
                        0.0
                    };
                    out.push((2.0 * k / peak - 1.0) as f32);
                }
                tensor::from_vec(out, dims, &device)
            }
        };
        Ok(add_gaussian(counted, sigma, rng))
    }

    /// The Gaussian σ with the same stiffness, for step sizes and the samplers that read one
    /// number: σ itself, or for photons the read noise and the photon noise of a dark value
    /// (y's 10th percentile, at least one photon) in quadrature: dark values are the stiffest.
    pub fn equivalent_sigma(&self, sigma: f64, y: &[f32]) -> f64 {
        match *self {
            NoiseModel::Gaussian => sigma,
            NoiseModel::Poisson { peak } => {
                let mut v: Vec<f32> = y.iter().map(|v| v + 1.0).collect();
                v.sort_by(f32::total_cmp);
                let dark = v.get(v.len() / 10).copied().unwrap_or(1.0) as f64;
                let dark = dark.max(2.0 / peak);
                (sigma * sigma + 2.0 * dark / peak).sqrt()
            }
        }
    }

    /// (k + s², λ + s²) in counts for y and z = A(x), s the read noise in counts.
    fn shifted_counts(peak: f64, sigma: f64, y: Tensor<4>, z: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let s2 = (sigma * peak / 2.0).powi(2);
        let count = |t: Tensor<4>| t.add_scalar(1.0).mul_scalar(peak / 2.0).add_scalar(s2);
        (count(y).clamp_min(0.0), count(z).clamp_min(FLOOR_COUNTS))
    }

    /// The deviance 2(log p(y | y) − log p(y | z)) summed per chain, [B, 1, 1, 1]: ‖y − z‖²/σ²
    /// for Gaussian noise. Differentiable in z.
    pub fn deviance(&self, sigma: f64, y: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
        match *self {
            NoiseModel::Gaussian => tensor::sum_sq(y - z).div_scalar(sigma * sigma),
            NoiseModel::Poisson { peak } => {
                let (k, l) = Self::shifted_counts(peak, sigma, y, z);
                // k ln(k/λ) − (k − λ), with 0 ln 0 = 0.
                let ratio = (k.clone() / l.clone()).clamp_min(1e-30);
                let terms = k.clone() * ratio.log() - k + l;
                terms.sum_dims(&[1, 2, 3]).mul_scalar(2.0)
            }
        }
    }

    /// ∂(−log p(y | z))/∂z, shaped like y.
    pub fn nll_grad(&self, sigma: f64, y: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
        match *self {
            NoiseModel::Gaussian => (z - y).div_scalar(sigma * sigma),
            NoiseModel::Poisson { peak } => {
                let (k, l) = Self::shifted_counts(peak, sigma, y, z);
                (k / l).sub_scalar(1.0).mul_scalar(-peak / 2.0)
            }
        }
    }

    /// The variance of each y value as y itself suggests (DPS's weights): σ² or, for photons,
    /// the read noise plus 2(y + 1)/P (at least one photon's).
    pub fn variance_from_y(&self, sigma: f64, y: Tensor<4>) -> Tensor<4> {
        match *self {
            NoiseModel::Gaussian => y.zeros_like().add_scalar(sigma * sigma),
            NoiseModel::Poisson { peak } => y
                .add_scalar(1.0)
                .mul_scalar(2.0 / peak)
                .clamp_min(4.0 / (peak * peak))
                .add_scalar(sigma * sigma),
        }
    }
}
