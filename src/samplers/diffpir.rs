//! DiffPIR — denoising diffusion models for plug-and-play restoration (Zhu et al., CVPR-W
//! 2023), in VE form (the paper's σ̄_t = √((1−ᾱ_t)/ᾱ_t) is our σ).
//!
//! Each step: x0 = D(x, σ_i); data proximal step
//! x̂0 = argmin ‖y − A x‖² + ρ_i ‖x − x0‖², ρ_i = λ σ_y²/σ_i², which is the structured solve
//! (λ/σ_i² · I + AᵀA/σ_y²) x̂0 = Aᵀy/σ_y² + (λ/σ_i²) x0; then re-noise to σ_{i+1} mixing the
//! implied noise ε̂ = (x − x̂0)/σ_i with fresh noise: x' = x̂0 + σ_{i+1}(√(1−ζ) ε̂ + √ζ ξ).
//! No backpropagation. Linear operators only (the solve needs AᵀA).

use super::{ChainState, Sampler};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::tensor::{self};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "DiffPir",
    preset: "DiffPir(steps: 50)",
    help: "Plug-and-play restoration (Zhu et al.): proximal data step between denoiser calls. Fields: steps, lambda, zeta, sigma_min, sigma_max, rho, warm (start from the classical restoration at this σ).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

/// `DiffPir(steps: 100, lambda: 1.0, zeta: 0.5, sigma_min: 0.002, sigma_max: 80, rho: 7)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffPirParams {
    pub steps: usize,
    /// Regularisation weight λ (ρ_i = λ σ_y²/σ_i²).
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Share of fresh noise ζ ∈ [0, 1] in the re-noising.
    #[serde(default = "default_zeta")]
    pub zeta: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
    /// Start from the classical restoration plus σ·z at this σ (the grid's top) instead of
    /// from noise at σ_max (as DDRM's `warm`): a decoded JPEG or y is most of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<f64>,
}

fn default_lambda() -> f64 {
    1.0
}
fn default_zeta() -> f64 {
    0.5
}

pub struct DiffPir {
    params: DiffPirParams,
    core: super::EdmCore,
    /// The data term's curvature bound for the gradient data step (0: closed form).
    lipschitz: f64,
}

impl DiffPir {
    pub fn new(params: DiffPirParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        if !(params.lambda > 0.0 && params.lambda.is_finite() && (0.0..=1.0).contains(&params.zeta))
        {
            return Err(Error::invalid(
                "DiffPir",
                "need lambda > 0 and 0 <= zeta <= 1",
            ));
        }
        let core = match params.warm {
            None => super::EdmCore::new(INFO.name, &params, problem, chains, seed)?,
            Some(w) => {
                super::check_warm_grid(INFO.name, Some(w), params.sigma_max)?;
                let grid = DiffPirParams {
                    sigma_max: Some(w),
                    ..params.clone()
                };
                super::EdmCore::warm(INFO.name, &grid, problem, chains, seed)?
            }
        };
        let lipschitz = if problem.is_linear_gaussian() {
            0.0
        } else {
            problem.operator.norm_sq(&problem.device)? / (problem.sigma_y * problem.sigma_y)
        };
        Ok(Self {
            params,
            core,
            lipschitz,
        })
    }
}

/// Gradient steps that stand in for the closed-form data step on a nonlinear operator or
/// photon noise: enough to close most of the gap at the step sizes of the schedule's end,
/// where the data step matters.
const PROXIMAL_STEPS: usize = 20;

impl DiffPir {
    /// argmin_z c/2 ‖z − x0‖² + R(z), R = −log p(y | z), by gradient descent from x0 with the
    /// step 1/(c + L), L bounding R's curvature (‖J_A‖²/σ_y²).
    fn proximal_by_gradient(&self, problem: &Problem, x0: Tensor<4>, c: f64) -> Tensor<4> {
        let step = 1.0 / (c + self.lipschitz);
        let mut z = x0.clone();
        for _ in 0..PROXIMAL_STEPS {
            let g = (z.clone() - x0.clone()).mul_scalar(c) + problem.data_grad(z.clone());
            z = z - g.mul_scalar(step);
        }
        z
    }
}

impl Sampler for DiffPir {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        let x = self.core.state.x.clone();
        let x0 = problem.prior.denoise(x.clone(), s);
        self.core.state.nfe += 1;
        let c = self.params.lambda / (s * s);
        let x0_hat = if problem.is_linear_gaussian() {
            let sy2 = problem.sigma_y * problem.sigma_y;
            let b = x.dims()[0];
            let rhs =
                problem.operator.adjoint(problem.y_batch(b)).div_scalar(sy2) + x0.mul_scalar(c);
            problem.operator.solve_shifted(c, problem.sigma_y, rhs)
        } else {
            self.proximal_by_gradient(problem, x0, c)
        };
        let eps_hat = (x - x0_hat.clone()).div_scalar(s);
        let noise = tensor::normal(&mut self.core.rng, eps_hat.dims(), &problem.device);
        let z = self.params.zeta;
        let mixed = eps_hat.mul_scalar((1.0 - z).sqrt()) + noise.mul_scalar(z.sqrt());
        let next = x0_hat.clone() + mixed.mul_scalar(s_next);
        self.core.state.advance(next, x0_hat, s_next);
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.core.state
    }
}
