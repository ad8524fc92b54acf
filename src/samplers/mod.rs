//! Samplers: each a step-wise state machine over a [`Problem`], driven the same way by the
//! command line, the tests and the window: `build` → `step` … until `is_done` → `samples`.
//! After every step [`ChainState`] holds what the screen shows: the chains x_t, their denoised
//! estimate x̂0, the current σ, and the network evaluations spent per chain.

mod ald;
mod almc;
mod cps;
mod daps;
mod ddrm;
mod diffpir;
mod dps;
mod eps;
mod exact;
mod pigdm;
mod prior;

pub use ald::{Ald, AldParams};
pub use almc::{Almc, AlmcParams};
pub use cps::{CpsParams, Drift, GeneratorChoice, NoiseSpaceLangevin};
pub use daps::{Daps, DapsParams};
pub use ddrm::{Ddrm, DdrmParams};
pub use diffpir::{DiffPir, DiffPirParams};
pub use dps::{Dps, DpsParams};
pub use eps::{Eps, EpsMode, EpsParams};
pub use exact::Exact;
pub use pigdm::{PiGdm, PiGdmParams};
pub use prior::{PriorParams, PriorSampler, Solver};

use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::tensor;
use burn::tensor::Tensor;

/// The observable state of a batch of chains after a step.
#[derive(Clone)]
pub struct ChainState {
    /// The current state x_t of every chain, [B, C, H, W].
    pub x: Tensor<4>,
    /// The current denoised estimate x̂0 of every chain, [B, C, H, W].
    pub x0_hat: Tensor<4>,
    /// The noise level of x (0 for a clean sample).
    pub sigma: f64,
    /// Steps taken so far and in all.
    pub step: usize,
    pub total_steps: usize,
    /// Prior (network) evaluations per chain so far; a VJP counts as one evaluation.
    pub nfe: usize,
}

pub trait Sampler: Send {
    /// The recipe name of the method.
    fn name(&self) -> &'static str;
    /// Advances every chain by one step.
    fn step(&mut self, problem: &Problem) -> Result<()>;
    fn state(&self) -> &ChainState;
    fn is_done(&self) -> bool {
        let s = self.state();
        s.step >= s.total_steps
    }
    /// What the sampler chose where its recipe left it a choice (for summaries and the window).
    fn detail(&self) -> Option<String> {
        None
    }
    /// The output samples once done (by default the denoised estimate of the last step).
    fn samples(&self) -> Tensor<4> {
        self.state().x0_hat.clone()
    }
}

/// The sampler as a recipe names it (names fixed by the command-line contract).
/// Written in a recipe as `Exact`, `Prior(steps: 100)`, `Dps(steps: 500, zeta: 1.0)`, …
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SamplerSpec {
    /// Exact posterior samples (Gaussian-mixture priors only).
    Exact,
    /// Unconditional samples from the prior (EDM sampler).
    Prior(PriorParams),
    /// Diffusion posterior sampling (Chung et al. 2023).
    Dps(DpsParams),
    /// Annealed Langevin with the likelihood gradient (Jalal et al. 2021).
    Ald(AldParams),
    /// Likelihood-first annealed Langevin Monte Carlo (Parulekar et al. 2026).
    Almc(AlmcParams),
    /// Langevin in the noise space of a deterministic generator (Purohit et al. 2025).
    NoiseSpaceLangevin(CpsParams),
    /// Exact posterior score (Mammadov, Kara et al. 2026).
    Eps(EpsParams),
    /// Decoupled annealing posterior sampling (Zhang et al. 2025).
    Daps(DapsParams),
    /// Plug-and-play diffusion restoration (Zhu et al. 2023).
    DiffPir(DiffPirParams),
    /// Pseudoinverse-guided diffusion (Song et al. 2023).
    PiGdm(PiGdmParams),
    /// Denoising diffusion restoration models (Kawar et al. 2022).
    Ddrm(DdrmParams),
}

impl SamplerSpec {
    pub fn name(&self) -> &'static str {
        match self {
            SamplerSpec::Exact => "Exact",
            SamplerSpec::Prior(_) => "Prior",
            SamplerSpec::Dps(_) => "Dps",
            SamplerSpec::Ald(_) => "Ald",
            SamplerSpec::Almc(_) => "Almc",
            SamplerSpec::NoiseSpaceLangevin(_) => "NoiseSpaceLangevin",
            SamplerSpec::Eps(_) => "Eps",
            SamplerSpec::Daps(_) => "Daps",
            SamplerSpec::DiffPir(_) => "DiffPir",
            SamplerSpec::PiGdm(_) => "PiGdm",
            SamplerSpec::Ddrm(_) => "Ddrm",
        }
    }
}

/// Starts `chains` chains of the sampler on the problem.
pub fn build(
    spec: &SamplerSpec,
    problem: &Problem,
    chains: usize,
    seed: u64,
) -> Result<Box<dyn Sampler>> {
    if chains == 0 {
        return Err(Error::invalid("chains", "must be at least 1"));
    }
    Ok(match spec {
        SamplerSpec::Exact => Box::new(Exact::new(problem, chains, seed)?),
        SamplerSpec::Prior(p) => Box::new(PriorSampler::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::Dps(p) => Box::new(Dps::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::Ald(p) => Box::new(Ald::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::Almc(p) => Box::new(Almc::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::NoiseSpaceLangevin(p) => {
            Box::new(NoiseSpaceLangevin::new(p.clone(), problem, chains, seed)?)
        }
        SamplerSpec::Eps(p) => Box::new(Eps::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::Daps(p) => Box::new(Daps::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::DiffPir(p) => Box::new(DiffPir::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::PiGdm(p) => Box::new(PiGdm::new(p.clone(), problem, chains, seed)?),
        SamplerSpec::Ddrm(p) => Box::new(Ddrm::new(p.clone(), problem, chains, seed)?),
    })
}

/// Runs a sampler to the end, checking every step for non-finite chains.
/// `on_step` sees the state after each step (progress bars, snapshots).
pub fn run(
    sampler: &mut dyn Sampler,
    problem: &Problem,
    mut on_step: impl FnMut(&ChainState),
) -> Result<()> {
    while !sampler.is_done() {
        sampler.step(problem)?;
        check_finite(sampler.name(), sampler.state())?;
        on_step(sampler.state());
    }
    Ok(())
}

/// Fails with [`Error::NonFinite`] when any chain holds NaN or Inf.
pub fn check_finite(name: &str, state: &ChainState) -> Result<()> {
    // x − x is 0 where finite and NaN elsewhere: one scalar read-back per step.
    let probe = (state.x.clone() - state.x.clone()).sum();
    let v = tensor::to_vec(&probe)?;
    if v.first().is_some_and(|v| v.is_finite()) {
        return Ok(());
    }
    let chains = tensor::non_finite_chains(&state.x)?;
    Err(Error::NonFinite {
        what: format!("{name} chains"),
        step: state.step,
        chains: chains.max(1),
    })
}

/// What the EDM-family samplers share: the Karras grid σ_0 > … > σ_{n−1} followed by
/// σ_n = 0, the run's generator, and the chains, drawn at the start from N(0, σ_0² I).
pub(crate) struct EdmCore {
    pub sigmas: Vec<f64>,
    pub rng: tensor::Rng,
    pub state: ChainState,
}

impl EdmCore {
    pub fn new(
        name: &str,
        steps: usize,
        (sigma_min, sigma_max): (Option<f64>, Option<f64>),
        rho: f64,
        problem: &Problem,
        chains: usize,
        seed: u64,
    ) -> Result<Self> {
        check_steps(name, steps)?;
        let (lo, hi) = sigma_range(name, sigma_min, sigma_max, problem.prior.sigma_range())?;
        let mut sigmas = crate::schedule::karras(steps, lo, hi, rho);
        sigmas.push(0.0);
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let x = tensor::normal(&mut rng, [chains, c, h, w], &problem.device).mul_scalar(sigmas[0]);
        let state = ChainState {
            x0_hat: x.zeros_like(),
            x,
            sigma: sigmas[0],
            step: 0,
            total_steps: steps,
            nfe: 0,
        };
        Ok(Self { sigmas, rng, state })
    }

    /// (σ_i, σ_{i+1}) of the next step, or None when every step is done.
    pub fn levels(&self) -> Option<(f64, f64)> {
        let i = self.state.step;
        (i < self.state.total_steps).then(|| (self.sigmas[i], self.sigmas[i + 1]))
    }
}

impl ChainState {
    /// Records a finished step to σ_next: the new state, its estimate x̂0 (the state itself once
    /// σ_next = 0) and the step count.
    pub(crate) fn advance(&mut self, x: Tensor<4>, x0_hat: Tensor<4>, sigma_next: f64) {
        self.x0_hat = if sigma_next == 0.0 { x.clone() } else { x0_hat };
        self.x = x;
        self.sigma = sigma_next;
        self.step += 1;
    }
}

/// One step of the EDM sampler from σ to σ_next given x̂0 = D(x, σ): Euler or Heun on the
/// probability-flow ODE (Heun calls `denoise` once more, except into σ = 0), or the stochastic
/// ancestral step. Returns the new state and the number of extra denoiser calls.
pub(crate) fn edm_step(
    solver: Solver,
    (x, x0): (Tensor<4>, Tensor<4>),
    (s, s_next): (f64, f64),
    rng: &mut tensor::Rng,
    mut denoise: impl FnMut(Tensor<4>, f64) -> Result<Tensor<4>>,
) -> Result<(Tensor<4>, usize)> {
    Ok(match solver {
        Solver::Euler | Solver::Heun => {
            let d = (x.clone() - x0).div_scalar(s);
            let euler = x.clone() + d.clone().mul_scalar(s_next - s);
            if solver == Solver::Heun && s_next > 0.0 {
                let d2 = (euler.clone() - denoise(euler, s_next)?).div_scalar(s_next);
                (x + (d + d2).mul_scalar(0.5 * (s_next - s)), 1)
            } else {
                (euler, 0)
            }
        }
        Solver::Ancestral => {
            let noise = tensor::normal(rng, x.dims(), &x.device());
            (ve_ancestral(x, x0, s, s_next, noise), 0)
        }
    })
}

/// Validates a noise range given by the user or defaulted from the prior.
pub(crate) fn sigma_range(
    sampler: &str,
    min: Option<f64>,
    max: Option<f64>,
    prior: (f64, f64),
) -> Result<(f64, f64)> {
    let lo = min.unwrap_or(prior.0);
    let hi = max.unwrap_or(prior.1);
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return Err(Error::invalid(
            sampler,
            format!("need 0 < sigma_min < sigma_max, got {lo} and {hi}"),
        ));
    }
    Ok((lo, hi))
}

pub(crate) fn check_steps(sampler: &str, steps: usize) -> Result<()> {
    if steps == 0 {
        return Err(Error::invalid(sampler, "steps must be at least 1"));
    }
    Ok(())
}

/// One ancestral (DDPM-posterior) step in VE form from σ_from to σ_to < σ_from, given x̂0:
/// x' = x̂0 + (σ_to²/σ_from²)(x − x̂0) + σ_to √(1 − σ_to²/σ_from²) ξ.
pub(crate) fn ve_ancestral(
    x: Tensor<4>,
    x0: Tensor<4>,
    s_from: f64,
    s_to: f64,
    noise: Tensor<4>,
) -> Tensor<4> {
    let ratio = (s_to * s_to) / (s_from * s_from);
    let std = s_to * (1.0 - ratio).max(0.0).sqrt();
    x0.clone() + (x - x0).mul_scalar(ratio) + noise.mul_scalar(std)
}
