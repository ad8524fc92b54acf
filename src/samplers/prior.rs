//! Unconditional samples from the prior with the EDM sampler (Karras et al. 2022):
//! deterministic Heun or Euler on the probability-flow ODE, or stochastic ancestral steps.

use super::{ChainState, Sampler};
use crate::error::Result;
use crate::problem::Problem;
use serde::{Deserialize, Serialize};

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

/// `Prior(steps: 64, solver: Heun, sigma_min: 0.002, sigma_max: 80, rho: 7)`.
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
    #[serde(default = "default_rho")]
    pub rho: f64,
}

pub(crate) fn default_rho() -> f64 {
    7.0
}

pub struct PriorSampler {
    params: PriorParams,
    core: super::EdmCore,
}

impl PriorSampler {
    pub fn new(params: PriorParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        let core = super::EdmCore::new(
            "Prior",
            params.steps,
            (params.sigma_min, params.sigma_max),
            params.rho,
            problem,
            chains,
            seed,
        )?;
        Ok(Self { params, core })
    }
}

impl Sampler for PriorSampler {
    fn name(&self) -> &'static str {
        "Prior"
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        let x = self.core.state.x.clone();
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
}
