//! Diffusion Posterior Sampling (Chung, Kim, McCann, Klasky, Ye; ICLR 2023), in VE form.
//!
//! Each step: x̂0 = D(x, σ_i) with the graph kept; an unconditional ancestral step to σ_{i+1};
//! then a guidance step down the gradient of |y - A(x0-hat(x))| with respect to x, through the
//! prior by burn autodiff.
//!
//! ζ follows the official code, not the paper: the code steps along ∇‖r‖ (the unsquared norm)
//! with a constant `scale`, while the paper's Algorithm 1 steps along ∇‖r‖² with ζ_t = ζ'/‖r‖;
//! since ∇‖r‖² = 2‖r‖∇‖r‖ the paper's ζ' equals our `zeta`/2. The code form is used because its
//! published scales (≈1.0 on [-1, 1] images with σ_y = 0.05) are the ones known to work.
//! The official code runs in VP form on x_vp = x/√(1+σ²); the same update written on our VE
//! state multiplies the step by √((1+σ_i²)(1+σ_{i+1}²)), applied here, so a `zeta` means what
//! the official `scale` means.

use super::{ChainState, Sampler, ve_ancestral};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::tensor::{self};
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Dps",
    preset: "Dps(steps: 200)",
    help: "Diffusion posterior sampling (Chung et al. 2023): an ancestral prior step, then a step of size ζ down the gradient of |y - A(x0-hat(x))| through the denoiser. Fields: steps, zeta (step size in the official code's form; default: 0.3 on whole-image priors, 0.2 when σ_y > 0.1: larger steps over-fit heavy noise; 3.0 on photo priors, 1.0 when σ_y > 0.05), sigma_min, sigma_max, rho.",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

/// `Dps(steps: 1000, zeta: 0.3, sigma_min: 0.002, sigma_max: 80, rho: 7)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpsParams {
    /// Number of noise levels (the paper uses 1000 DDPM steps).
    pub steps: usize,
    /// Guidance scale in the official code's form (step along ∇‖y − A x̂0‖). Unset: the tested
    /// value for the problem ([`default_zeta`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
}

/// ζ when the recipe gives none, as measured for the kind of prior it meets. Whole-image priors
/// (Fashion-MNIST, digits): 0.3 at σ_y ≤ 0.1, tested on every shipped prior and operator there,
/// and 0.2 for heavier noise, where larger steps pull the chains onto the noisy y (the official
/// code's 1.0 returns y itself at σ_y = 0.3 on Fashion-MNIST: gain 0.0 dB). Patch priors run in
/// tiles (photos) need larger steps: on 64² crops of two held-out photos at σ_y 0.02, 0.3 lost
/// 3–7 dB to the classical answer on super-resolution, scratches and blur; 3.0 beat it on all
/// three for both photos and equalled or beat 1.0, 2.0 and 5.0 on all but one (blur: 5.0); at
/// σ_y 0.1 (denoising) 1.0 was best (docs/sampler-table.md, "DPS's ζ on photos").
pub fn default_zeta(sigma_y: f64, patch_prior: bool) -> f64 {
    match (patch_prior, sigma_y > 0.05, sigma_y > 0.1) {
        (true, false, _) => 3.0,
        (true, true, _) => 1.0,
        (false, _, true) => 0.2,
        (false, _, false) => 0.3,
    }
}

pub struct Dps {
    zeta: f64,
    core: super::EdmCore,
}

impl Dps {
    pub fn new(params: DpsParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        let zeta = (params.zeta).unwrap_or(default_zeta(problem.sigma_y, problem.prior.any_size()));
        if !(zeta.is_finite() && zeta >= 0.0) {
            return Err(Error::invalid(
                "Dps",
                format!("zeta must be a non-negative number, got {zeta}"),
            ));
        }
        let core = super::EdmCore::new(INFO.name, &params, problem, chains, seed)?;
        Ok(Self { zeta, core })
    }
}

impl Sampler for Dps {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        // Σ over chains of ‖r_b‖; the tiny offset keeps the gradient of the norm finite at r = 0.
        let (x0, grad) = super::grad_through_prior(
            INFO.name,
            &self.core.state.x,
            problem.prior.as_ref(),
            s,
            |x0| {
                tensor::sum_sq(problem.weighted_residual(x0))
                    .add_scalar(1e-12)
                    .sqrt()
            },
        )?;
        let x = self.core.state.x.clone();
        self.core.state.nfe += 1;

        let noise = tensor::normal(&mut self.core.rng, x.dims(), &problem.device);
        let unconditional = ve_ancestral(x, x0.clone(), s, s_next, noise);
        let vp_to_ve = ((1.0 + s * s) * (1.0 + s_next * s_next)).sqrt();
        let next = unconditional - grad.mul_scalar(self.zeta * vp_to_ve);
        self.core.state.advance(next, x0, s_next);
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.core.state
    }

    fn detail(&self) -> Option<String> {
        Some(format!("zeta {}", self.zeta))
    }
}
