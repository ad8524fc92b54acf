//! Unconditional samples from the prior with the EDM sampler (Karras et al. 2022):
//! deterministic Heun or Euler on the probability-flow ODE, or stochastic ancestral steps.

use super::{ChainState, Sampler};
use crate::error::Result;
use crate::problem::Problem;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Prior",
    preset: "Prior(steps: 40)",
    help: "Unconditional samples from the prior (ignores y): what the prior believes. Fields: steps, solver (Heun|Euler|Ancestral), sigma_min, sigma_max, rho, distilled (true: the distilled one-step consistency model, one call per step; steps: 1 for one-step samples).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Solver {
    /// Second-order probability-flow ODE (2 evaluations per step but the last).
    #[default]
    Heun,
    /// First-order probability-flow ODE.
    Euler,
    /// Stochastic: the exact DDPM posterior step given x̂0 (reverse SDE).
    Ancestral,
}

/// `Prior(steps: 64, solver: Heun, sigma_min: 0.002, sigma_max: 80, rho: 7, distilled: false)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorParams {
    /// Number of noise levels of the Karras grid (a final step goes to σ = 0).
    pub steps: usize,
    #[serde(default)]
    pub solver: Solver,
    /// Defaults to the prior's range (0.002 … 80 for EDM models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
    /// Use the prior's distilled consistency generator (`NAME-cm/` beside the model) instead of
    /// the denoiser: each step maps x at level σ to f(x, σ) in one call and re-noises it to the
    /// next level (multistep consistency sampling); `steps: 1` is one call per sample. `solver`
    /// is then unused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distilled: bool,
}

pub struct PriorSampler {
    params: PriorParams,
    core: super::EdmCore,
}

impl PriorSampler {
    pub fn new(params: PriorParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        if params.distilled {
            let Some(g) = problem.prior.generator() else {
                return Err(crate::error::Error::invalid(
                    "Prior",
                    "distilled: true needs a distilled one-step model (a NAME-cm folder beside the prior's model)",
                ));
            };
            let top = params.sigma_max.unwrap_or(problem.prior.sigma_range().1);
            if top > g.top() * (1.0 + 1e-9) {
                return Err(crate::error::Error::invalid(
                    "Prior",
                    format!(
                        "the one-step model beside {} was distilled only up to σ {} (for warm starts), not from σ {top}",
                        problem.prior.describe(),
                        g.top()
                    ),
                ));
            }
        }
        let core = super::EdmCore::new(INFO.name, &params, problem, chains, seed)?;
        Ok(Self { params, core })
    }
}

impl Sampler for PriorSampler {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        let x = self.core.state.x.clone();
        if let Some(generator) = problem.prior.generator().filter(|_| self.params.distilled) {
            let x0 = generator.consistency(x, s);
            self.core.state.nfe += 1;
            let noise = crate::tensor::normal(&mut self.core.rng, x0.dims(), &x0.device());
            let next = x0.clone() + noise.mul_scalar(s_next);
            self.core.state.advance(next, x0, s_next);
            return Ok(());
        }
        let x0 = problem.prior.denoise(x.clone(), s);
        self.core.state.nfe += 1;
        let (next, extra) = super::edm_step(
            self.params.solver,
            (x, x0.clone()),
            (s, s_next),
            &mut self.core.rng,
            |x, s| Ok(problem.prior.denoise(x, s)),
        )?;
        self.core.state.nfe += extra;
        self.core.state.advance(next, x0, s_next);
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.core.state
    }

    fn detail(&self) -> Option<String> {
        self.params
            .distilled
            .then(|| "distilled one-step consistency model".into())
    }
}
