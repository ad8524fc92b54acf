//! Unconditional samples from the prior with the EDM sampler (Karras et al. 2022):
//! deterministic Heun or Euler on the probability-flow ODE, or stochastic ancestral steps.

use super::{ChainState, Sampler, check_steps, sigma_range, ve_ancestral};
use crate::error::Result;
use crate::problem::Problem;
use crate::schedule;
use crate::tensor::{self, Rng};
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
    /// σ_0 > … > σ_{n−1} > σ_n = 0
    sigmas: Vec<f64>,
    rng: Rng,
    state: ChainState,
}

impl PriorSampler {
    pub fn new(params: PriorParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        check_steps("Prior", params.steps)?;
        let (lo, hi) = sigma_range(
            "Prior",
            params.sigma_min,
            params.sigma_max,
            problem.prior.sigma_range(),
        )?;
        let mut sigmas = schedule::karras(params.steps, lo, hi, params.rho);
        sigmas.push(0.0);
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let x = tensor::normal(&mut rng, [chains, c, h, w], &problem.device).mul_scalar(sigmas[0]);
        let state = ChainState {
            x0_hat: x.zeros_like(),
            x,
            sigma: sigmas[0],
            step: 0,
            total_steps: params.steps,
            nfe: 0,
        };
        Ok(Self {
            params,
            sigmas,
            rng,
            state,
        })
    }
}

impl Sampler for PriorSampler {
    fn name(&self) -> &'static str {
        "Prior"
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        let i = self.state.step;
        let (s, s_next) = (self.sigmas[i], self.sigmas[i + 1]);
        let x = self.state.x.clone();
        let x0 = problem.prior.denoise(x.clone(), s);
        self.state.nfe += 1;
        let next = match self.params.solver {
            Solver::Euler | Solver::Heun => {
                let d = (x.clone() - x0.clone()).div_scalar(s);
                let euler = x.clone() + d.clone().mul_scalar(s_next - s);
                if self.params.solver == Solver::Heun && s_next > 0.0 {
                    let x0b = problem.prior.denoise(euler.clone(), s_next);
                    self.state.nfe += 1;
                    let d2 = (euler - x0b).div_scalar(s_next);
                    x + (d + d2).mul_scalar(0.5 * (s_next - s))
                } else {
                    euler
                }
            }
            Solver::Ancestral => {
                let noise = tensor::normal(&mut self.rng, x.dims(), &problem.device);
                ve_ancestral(x, x0.clone(), s, s_next, noise)
            }
        };
        self.state.x = next;
        self.state.x0_hat = if s_next == 0.0 {
            self.state.x.clone()
        } else {
            x0
        };
        self.state.sigma = s_next;
        self.state.step += 1;
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }
}
