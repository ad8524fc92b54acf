//! Photon noise for the samplers whose steps need Gaussian noise (DDRM, ΠGDM, EPS): each value's
//! noise taken as Gaussian with the variance y itself suggests (DPS's weighted least squares,
//! the Gaussian approximation of the Poisson likelihood). With a diagonal A (denoising,
//! inpainting) that whitens into a linear-Gaussian problem of the same kind:
//! W y = (W A) x + σ n, W = σ/√Var(y), whose A is again diagonal, so the closed-form steps hold.

use super::{ChainState, Sampler, SamplerSpec};
use crate::error::Result;
use crate::operators::{Mask, Operator, Structure};
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

/// A linear-Gaussian sampler run on the whitened problem; the problem it is stepped with is
/// the original one, and only its own is used.
pub struct Whitened {
    inner: Box<dyn Sampler>,
    problem: Problem,
}

impl Whitened {
    pub fn new(spec: &SamplerSpec, problem: Problem, chains: usize, seed: u64) -> Result<Self> {
        let inner = super::build(spec, &problem, chains, seed)?;
        Ok(Self { inner, problem })
    }
}

impl Sampler for Whitened {
    fn info(&self) -> &'static super::SamplerInfo {
        self.inner.info()
    }
    fn step(&mut self, _problem: &Problem) -> Result<()> {
        self.inner.step(&self.problem)
    }
    fn state(&self) -> &ChainState {
        self.inner.state()
    }
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
    fn detail(&self) -> Option<String> {
        let note = "photon noise as Gaussian noise of y's own variance";
        Some(match self.inner.detail() {
            Some(d) => format!("{note}; {d}"),
            None => note.into(),
        })
    }
    fn samples(&self) -> Tensor<4> {
        self.inner.samples()
    }
}

/// Whether A is diagonal (the whitened A stays a closed-form one).
pub(crate) fn is_diagonal(op: &dyn Operator) -> bool {
    matches!(op.structure(), Structure::Diagonal)
}
