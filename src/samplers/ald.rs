//! Annealed Langevin dynamics with the likelihood gradient (Jalal, Arvinte, Daras, Price,
//! Dimakis, Tamir; NeurIPS 2021), in the NCSN form:
//!
//! for each level σ_i (geometric from σ_max to σ_min), `inner` times:
//!   g = s(x, σ_i) + Aᵀ(y − A x)/(σ_y² + σ_i²),   α_i = ε σ_i²/σ_min²,
//!   x ← x + α_i g + √(2α_i) ξ
//! and a final Tweedie denoise at σ_min (x̂0 = D(x, σ_min)), which is what `samples` returns
//! when `final_denoise` is on.
//!
//! The likelihood annealed with σ_y² + σ_i² is a heuristic: each level targets
//! p_σ(x)·N(y; A x, (σ_y² + σ_i²) I), not the noised posterior, so only the last level aims
//! at the true posterior; mode weights are as good as the mixing across levels allows.

use super::{ChainState, check_steps, sigma_range};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::schedule;
use crate::tensor::{self, Rng};
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Ald",
    preset: "Ald(steps: 100)",
    help: "Annealed Langevin with the likelihood gradient (Jalal et al.). Fields: steps, inner, eps, sigma_min, sigma_max, final_denoise.",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

/// `Ald(steps: 200, inner: 3, eps: None, sigma_min: 0.01, sigma_max: 50, final_denoise: true)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AldParams {
    /// Number of noise levels L.
    pub steps: usize,
    /// Langevin steps per level T.
    #[serde(default = "default_inner")]
    pub inner: usize,
    /// Step-size constant ε of α_i = ε σ_i²/σ_min²; default 0.5·σ_min² (α_i = σ_i²/2), the
    /// largest comfortably stable step at high noise, where the score is ~1/σ²-Lipschitz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    #[serde(default = "default_sigma_min")]
    pub sigma_min: f64,
    #[serde(default = "default_sigma_max")]
    pub sigma_max: f64,
    #[serde(default = "default_true")]
    pub final_denoise: bool,
}

fn default_inner() -> usize {
    3
}
fn default_sigma_min() -> f64 {
    0.01
}
fn default_sigma_max() -> f64 {
    50.0
}
fn default_true() -> bool {
    true
}

pub struct Ald {
    params: AldParams,
    sigmas: Vec<f64>,
    eps: f64,
    rng: Rng,
    state: ChainState,
}

impl Ald {
    pub fn new(params: AldParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        check_steps("Ald", params.steps)?;
        super::check_count("Ald", "inner", params.inner, 1)?;
        let (lo, hi) = sigma_range(
            "Ald",
            Some(params.sigma_min),
            Some(params.sigma_max),
            (0.0, 0.0),
        )?;
        let eps = params.eps.unwrap_or(0.5 * lo * lo);
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid(
                "Ald",
                format!("eps must be positive, got {eps}"),
            ));
        }
        let sigmas = schedule::geometric(params.steps, lo, hi);
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let x = tensor::normal(&mut rng, [chains, c, h, w], &problem.device).mul_scalar(hi);
        let total = params.steps * params.inner;
        let state = ChainState {
            x0_hat: x.zeros_like(),
            x,
            sigma: hi,
            step: 0,
            total_steps: total,
            nfe: 0,
        };
        Ok(Self {
            params,
            sigmas,
            eps,
            rng,
            state,
        })
    }
}

impl super::Sampler for Ald {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        let level = self.state.step / self.params.inner;
        let s = self.sigmas[level];
        let s_min = self.params.sigma_min;
        let alpha = self.eps * s * s / (s_min * s_min);
        let x = self.state.x.clone();
        // One prior call per step: its denoised estimate is both the score (Tweedie) and
        // what the screen shows as x̂0.
        let denoised = problem.prior.denoise(x.clone(), s);
        let prior_score = (denoised.clone() - x.clone()).div_scalar(s * s);
        let sy2 = problem.sigma_y * problem.sigma_y;
        // data_grad is Aᵀ(Ax − y)/σ_y²; rescale to the annealed variance σ_y² + σ².
        let lik = problem
            .data_grad(x.clone())
            .mul_scalar(-sy2 / (sy2 + s * s));
        let noise = tensor::normal(&mut self.rng, x.dims(), &problem.device);
        self.state.x =
            x + (prior_score + lik).mul_scalar(alpha) + noise.mul_scalar((2.0 * alpha).sqrt());
        self.state.nfe += 1;
        self.state.sigma = s;
        self.state.step += 1;
        let last = self.state.step >= self.state.total_steps;
        self.state.x0_hat = if last && self.params.final_denoise {
            self.state.nfe += 1;
            problem.prior.denoise(self.state.x.clone(), s_min)
        } else if last {
            self.state.x.clone()
        } else {
            denoised
        };
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }
}
