//! Conversions between host vectors and burn tensors, and seeded Gaussian noise.
//!
//! Noise is drawn on the host from a seeded ChaCha generator and uploaded, so a run is
//! reproducible bit-for-bit in its random draws whatever the backend.

use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub type Rng = StdRng;

pub fn rng(seed: u64) -> Rng {
    StdRng::seed_from_u64(seed)
}

/// One standard normal draw (Box–Muller).
pub fn gaussian(rng: &mut Rng) -> f64 {
    loop {
        let u1: f64 = rng.random();
        if u1 > f64::MIN_POSITIVE {
            let u2: f64 = rng.random();
            return (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        }
    }
}

pub fn gaussian_vec(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| gaussian(rng)).collect()
}

/// A [B, C, H, W] tensor of independent N(0, 1) draws.
pub fn normal(rng: &mut Rng, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| gaussian(rng) as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub fn from_f64<const D: usize>(data: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    from_vec(data.iter().map(|v| *v as f32).collect(), shape, device)
}

/// Reads a tensor back to the host as f32.
pub fn to_vec<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    t.to_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend(format!("reading a tensor back: {e:?}")))
}

pub fn to_f64<const D: usize>(t: &Tensor<D>) -> Result<Vec<f64>> {
    Ok(to_vec(t)?.into_iter().map(f64::from).collect())
}

/// Splits a [B, ...] host buffer into B rows of f64.
pub fn rows_f64(data: &[f32], batch: usize) -> Vec<Vec<f64>> {
    let d = data.len().checked_div(batch).unwrap_or(0);
    data.chunks(d.max(1))
        .take(batch)
        .map(|c| c.iter().map(|v| f64::from(*v)).collect())
        .collect()
}

/// Σ over all but the batch axis of t², shape [B, 1, 1, 1].
pub fn sum_sq(t: Tensor<4>) -> Tensor<4> {
    t.square().sum_dims(&[1, 2, 3])
}

/// Per-chain inner product ⟨a, b⟩, shape [B, 1, 1, 1].
pub fn inner(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    (a * b).sum_dims(&[1, 2, 3])
}

/// Number of chains with a NaN or Inf entry.
pub fn non_finite_chains(t: &Tensor<4>) -> Result<usize> {
    let [b, ..] = t.dims();
    let v = to_vec(t)?;
    if b == 0 {
        return Ok(0);
    }
    let d = v.len() / b;
    Ok(v.chunks(d.max(1))
        .filter(|c| c.iter().any(|x| !x.is_finite()))
        .count())
}
