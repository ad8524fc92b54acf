//! ΠGDM — pseudoinverse-guided diffusion (Song, Vahdat, Mardani, Kautz; ICLR 2023), VE form.
//!
//! With x̂0 = D(x, σ) and the Gaussian approximation p(x0 | x_σ) ≈ N(x̂0, r² I),
//! r² = σ²/(1 + σ²) (unit-variance data), the likelihood score is the VJP
//! g = (∂x̂0/∂x)ᵀ Aᵀ (r² A Aᵀ + σ_y² I)⁻¹ (y − A x̂0), computed with the structured solve
//! Aᵀ(r²AAᵀ + σ_y²I)⁻¹ = (σ_y² I + r² AᵀA)⁻¹ Aᵀ and one backward pass through the prior.
//! By Tweedie the guided estimate is x̂0 + w σ² g, and a DDIM step (η: 0 deterministic,
//! 1 ancestral) moves to σ_{i+1}.
//!
//! For a decoded round trip A = h†∘h (JPEG) the paper's pseudo-inverse construction replaces
//! A†(y − A x̂0) by h†(y) − h†(h(x̂0)) = y − A(x̂0) (y is already decoded), and the solve by
//! (r² + σ_y²)⁻¹, σ_y holding the rounding's width.

use super::{ChainState, Sampler};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::tensor::{self};
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "PiGdm",
    preset: "PiGdm(steps: 50)",
    help: "Pseudoinverse-guided diffusion (Song et al.). Fields: steps, eta, weight, sigma_min, sigma_max, rho.",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::LinearGaussianOrRoundTrip,
    anneals: true,
    patch_preset: None,
};

/// `PiGdm(steps: 100, eta: 1.0, weight: 1.0, sigma_min: 0.002, sigma_max: 80, rho: 7)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiGdmParams {
    pub steps: usize,
    /// DDIM stochasticity η ∈ [0, 1].
    #[serde(default = "default_one")]
    pub eta: f64,
    /// Guidance weight w.
    #[serde(default = "default_one")]
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
}

fn default_one() -> f64 {
    1.0
}

pub struct PiGdm {
    params: PiGdmParams,
    core: super::EdmCore,
}

impl PiGdm {
    pub fn new(params: PiGdmParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&params.eta) || !(params.weight >= 0.0) {
            return Err(Error::invalid(
                "PiGdm",
                "need 0 <= eta <= 1 and weight >= 0",
            ));
        }
        let core = super::EdmCore::new(INFO.name, &params, problem, chains, seed)?;
        Ok(Self { params, core })
    }
}

impl Sampler for PiGdm {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        let r2 = s * s / (1.0 + s * s);
        let sy2 = problem.sigma_y * problem.sigma_y;
        // g = VJP of v = (σ_y² I + r² AᵀA)⁻¹ Aᵀ (y − A x̂0), v held constant.
        let (x0, g) = super::grad_through_prior(
            INFO.name,
            &self.core.state.x,
            problem.prior.as_ref(),
            s,
            |x0| {
                let resid = problem.residual(x0.clone().detach().without_autodiff());
                let v = if problem.is_linear_gaussian() {
                    let at_r = problem.operator.adjoint(resid).div_scalar(r2 * sy2);
                    problem
                        .operator
                        .solve_shifted(1.0 / r2, problem.sigma_y, at_r)
                } else {
                    resid.div_scalar(r2 + sy2)
                };
                tensor::inner(v.autodiff(), x0)
            },
        )?;
        self.core.state.nfe += 1;
        let x = self.core.state.x.clone();
        let x0 = x0 + g.mul_scalar(self.params.weight * s * s);
        let eps_hat = (x - x0.clone()).div_scalar(s);
        // DDIM: c² of the remaining σ_{i+1}² is fresh noise (η = 1: the ancestral step).
        let c = self.params.eta * s_next * (1.0 - (s_next * s_next) / (s * s)).max(0.0).sqrt();
        let noise = tensor::normal(&mut self.core.rng, eps_hat.dims(), &problem.device);
        let next = x0.clone()
            + eps_hat.mul_scalar((s_next * s_next - c * c).max(0.0).sqrt())
            + noise.mul_scalar(c);
        self.core.state.advance(next, x0, s_next);
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.core.state
    }
}
