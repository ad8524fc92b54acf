//! Photon noise for the samplers whose steps need Gaussian noise (DDRM, ΠGDM, EPS): each value's
//! noise taken as Gaussian with the variance y itself suggests (DPS's weighted least squares,
//! the Gaussian approximation of the Poisson likelihood). With a diagonal A (denoising,
//! inpainting) that whitens into a linear-Gaussian problem of the same kind:
//! W y = (W A) x + σ n, W = σ/√Var(y), whose A is again diagonal, so the closed-form steps hold.

use super::SamplerSpec;
use super::support::Noted;
use crate::error::Result;
use crate::operators::{Mask, Operator};
use crate::problem::Problem;
use crate::tensor;
use burn::tensor::Tensor;
use std::sync::Arc;

/// The whitened problem, when the measurement is photon noise through a linear diagonal A.
pub fn whitened(problem: &Problem) -> Result<Option<Problem>> {
    if !problem.is_whitenable() {
        return Ok(None);
    }
    let op = problem.operator.as_ref();
    let [c, h, w] = op.input_shape();
    let sigma = problem.sigma_y;
    let var = problem
        .noise
        .variance_from_y(problem.read_sigma, problem.y.clone());
    let weight = var.sqrt().recip().mul_scalar(sigma);
    // A's diagonal, per value.
    let diag = op.forward(Tensor::<4>::ones([1, c, h, w], &problem.device));
    let gains = tensor::to_vec(&(diag * weight.clone()))?;
    let whitened_op: Arc<dyn Operator> = Arc::new(Mask::from_array(
        [c, h, w],
        &[c, h, w],
        gains,
        &problem.device,
    )?);
    let y = problem.y.clone() * weight;
    let mut out = Problem::new(
        problem.prior.clone(),
        whitened_op,
        y,
        sigma,
        problem.device.clone(),
    )?;
    if let Some(t) = &problem.truth {
        out = out.with_truth(t.clone())?;
    }
    Ok(Some(out))
}

/// A linear-Gaussian sampler on the whitened problem, saying so in its detail; it is stepped
/// with the original problem and uses its own.
pub fn build(spec: &SamplerSpec, whitened: Problem, chains: usize, seed: u64) -> Result<Noted> {
    let inner = super::build(spec, &whitened, chains, seed)?;
    let note = "photon noise as Gaussian noise of y's own variance".to_string();
    Ok(Noted::new(inner, note).with_problem(whitened))
}
