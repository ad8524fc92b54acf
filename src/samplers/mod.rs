//! Samplers: each a step-wise state machine over a [`Problem`], driven the same way by the
//! command line, the tests and the window: `build` → `step` … until `is_done` → `samples`.
//! After every step [`ChainState`] holds what the screen shows: the chains x_t, their denoised
//! estimate x̂0, the current σ, and the network evaluations spent per chain.

mod ald;
mod almc;
pub mod auto;
mod cps;
mod daps;
mod ddrm;
mod ddrm_damage;
mod denoiser_needed;
mod diffpir;
mod dps;
mod eps;
mod exact;
pub mod grid_posterior;
mod pigdm;
mod prior;
mod support;
pub mod whitened;

pub use ald::{Ald, AldParams};
pub use almc::{Almc, AlmcParams};
pub use auto::{AutoParams, AutoSampler, Speed};
pub use cps::{CpsParams, Drift, GeneratorChoice, NoiseSpaceLangevin};
pub use daps::{Daps, DapsParams};
pub use ddrm::{Ddrm, DdrmParams};
pub use diffpir::{DiffPir, DiffPirParams};
pub use dps::{Dps, DpsParams};
pub use eps::{Eps, EpsMode, EpsParams};
pub use exact::{Exact, ExactPosterior};
pub use pigdm::{PiGdm, PiGdmParams};
pub use prior::{PriorParams, PriorSampler, Solver};
pub use support::{MeasurementKind, MeasurementSupport, PriorSupport};

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
    fn name(&self) -> &'static str {
        self.info().name
    }
    /// The method's description (see [`SamplerInfo`]).
    fn info(&self) -> &'static SamplerInfo;
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

/// What a sampler says about itself: read by the window's sampler list, the bench table and
/// the tests, so a sampler is described once, beside its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerInfo {
    /// The recipe name (fixed by the command-line contract).
    pub name: &'static str,
    /// The tested preset: the recipe line a user starts from. Every field but `steps` keeps its
    /// default, and the defaults are the tested ones for the problem given.
    pub preset: &'static str,
    /// One paragraph: the method, its paper, and every field.
    pub help: &'static str,
    /// Which priors it runs on.
    pub priors: PriorSupport,
    /// Which measurements it takes.
    pub measurements: MeasurementSupport,
    /// True when the chains follow a noise level σ that falls over the steps (the σ plot and
    /// the σ read-out mean something); false for Langevin in a fixed space and exact draws.
    pub anneals: bool,
    /// The preset on a patch prior (photos, any size), where the general one does badly there.
    pub patch_preset: Option<&'static str>,
}

/// The description of the sampler called `name` in recipes.
pub fn info(name: &str) -> Option<&'static SamplerInfo> {
    ALL.iter().copied().find(|i| i.name == name)
}

/// Parses a sampler as a recipe writes it (`Dps(steps: 200)`).
pub fn parse(text: &str) -> std::result::Result<SamplerSpec, String> {
    crate::ron_format::options()
        .from_str(&auto::bare_auto_to_call(text.trim()))
        .map_err(|e| e.to_string())
}

/// The table of samplers: the recipe enum [`SamplerSpec`], the list [`ALL`] and [`build`] are
/// generated from it, so adding a sampler is its own file (parameters, [`SamplerInfo`], the
/// [`Sampler`] impl with `new(params, problem, chains, seed)`), its `mod` line and one row here.
/// `Exact` takes no parameters and is written by hand.
macro_rules! sampler_table {
    ($( $(#[$doc:meta])* $variant:ident($params:ty) => $module:ident::$ty:ident, )*) => {
        /// The sampler as a recipe names it (names fixed by the command-line contract).
        /// Written in a recipe as `Exact`, `Prior(steps: 100)`, `Dps(steps: 500, zeta: 0.3)`, …
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum SamplerSpec {
            /// Exact posterior samples (Gaussian-mixture priors only).
            Exact,
            $( $(#[$doc])* $variant($params), )*
        }

        /// Every sampler, in the order the window lists them (posterior samplers first).
        pub const ALL: &[&SamplerInfo] = &[$( &$module::INFO, )* &exact::INFO];

        impl SamplerSpec {
            pub fn info(&self) -> &'static SamplerInfo {
                match self {
                    SamplerSpec::Exact => &exact::INFO,
                    $( SamplerSpec::$variant(_) => &$module::INFO, )*
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
            denoiser_needed::check(spec, problem)?;
            spec.info()
                .takes(problem)
                .map_err(|m| Error::invalid(spec.info().name, m))?;
            // Photon noise for the samplers that need Gaussian noise: its Gaussian approximation.
            if spec.info().measurements.needs_gaussian_steps()
                && problem.is_whitenable()
                && let Some(w) = whitened::whitened(problem)?
            {
                return Ok(Box::new(whitened::build(spec, w, chains, seed)?));
            }
            let sampler: Box<dyn Sampler> = match spec {
                SamplerSpec::Exact => Box::new(Exact::new(problem, chains, seed)?),
                $( SamplerSpec::$variant(p) => {
                    Box::new($module::$ty::new(p.clone(), problem, chains, seed)?)
                } )*
            };
            Ok(match support::likelihood_note(spec, problem) {
                Some(note) => Box::new(support::Noted::new(sampler, note)),
                None => sampler,
            })
        }
    };
}

sampler_table! {
    /// The best tested preset for the prior and the operator.
    Auto(AutoParams) => auto::AutoSampler,
    /// Diffusion posterior sampling (Chung et al. 2023).
    Dps(DpsParams) => dps::Dps,
    /// Exact posterior score (Mammadov, Kara et al. 2026).
    Eps(EpsParams) => eps::Eps,
    /// Likelihood-first annealed Langevin Monte Carlo (Parulekar et al. 2026).
    Almc(AlmcParams) => almc::Almc,
    /// Langevin in the noise space of a deterministic generator (Purohit et al. 2025).
    NoiseSpaceLangevin(CpsParams) => cps::NoiseSpaceLangevin,
    /// Annealed Langevin with the likelihood gradient (Jalal et al. 2021).
    Ald(AldParams) => ald::Ald,
    /// Decoupled annealing posterior sampling (Zhang et al. 2025).
    Daps(DapsParams) => daps::Daps,
    /// Plug-and-play diffusion restoration (Zhu et al. 2023).
    DiffPir(DiffPirParams) => diffpir::DiffPir,
    /// Pseudoinverse-guided diffusion (Song et al. 2023).
    PiGdm(PiGdmParams) => pigdm::PiGdm,
    /// Denoising diffusion restoration models (Kawar et al. 2022).
    Ddrm(DdrmParams) => ddrm::Ddrm,
    /// Unconditional samples from the prior (EDM sampler).
    Prior(PriorParams) => prior::PriorSampler,
}

impl SamplerSpec {
    pub fn name(&self) -> &'static str {
        self.info().name
    }
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
        check_state(sampler.name(), sampler.state(), problem)?;
        if crate::signals::interrupted() {
            return Err(Error::Cancelled);
        }
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
    // Name the chains (first few) so the user knows where to look in an export.
    let [b, ..] = state.x.dims();
    let v = tensor::to_vec(&state.x)?;
    let bad: Vec<usize> = v
        .chunks((v.len() / b.max(1)).max(1))
        .enumerate()
        .filter(|(_, c)| c.iter().any(|x| !x.is_finite()))
        .map(|(k, _)| k)
        .collect();
    let list: Vec<String> = bad.iter().take(8).map(|k| k.to_string()).collect();
    let more = if bad.len() > 8 { ", …" } else { "" };
    Err(Error::NonFinite {
        what: format!("{name} chains [{}{more}]", list.join(", ")),
        step: state.step,
        chains: bad.len().max(1),
    })
}

/// How far beyond the prior's data scale an estimate may go before the run counts as diverged.
pub const DIVERGENCE_FACTOR: f64 = 100.0;

/// [`check_finite`], then divergence: an estimate x̂0 beyond [`DIVERGENCE_FACTOR`] times the
/// prior's data scale is an error like NaN (a result in ±1e5 for data in [−1, 1] is no result).
/// Judged once σ is down to the data's scale: at high σ guided estimates such as ΠGDM's
/// x̂0 + σ²g legitimately overshoot for a few steps, and a run stopped at a high noise level
/// (ALMC's phase one alone) holds states of that level, not data.
pub fn check_state(name: &str, state: &ChainState, problem: &Problem) -> Result<()> {
    check_finite(name, state)?;
    let bound = problem.prior.data_bound();
    if state.sigma > bound {
        return Ok(());
    }
    let limit = DIVERGENCE_FACTOR * bound;
    let top = tensor::to_f64(&state.x0_hat.clone().abs().max())?
        .first()
        .copied()
        .unwrap_or(0.0);
    if top.is_finite() && top <= limit {
        return Ok(());
    }
    let [b, ..] = state.x0_hat.dims();
    let v = tensor::to_vec(&state.x0_hat)?;
    let d = v.len() / b.max(1);
    let bad: Vec<String> = v
        .chunks(d.max(1))
        .enumerate()
        .filter(|(_, c)| c.iter().any(|x| !(f64::from(x.abs()) <= limit)))
        .map(|(k, _)| k.to_string())
        .take(8)
        .collect();
    Err(Error::Diverged {
        what: format!("{name} chains"),
        step: state.step,
        max: top,
        bound,
        chains: bad.join(", "),
    })
}

/// The Karras-grid fields every EDM-family parameter struct carries (`steps`, `sigma_min`,
/// `sigma_max`, `rho`). The fields stay in each struct so that `deny_unknown_fields` keeps
/// working (serde's `flatten` would disable it); this trait is the one place that reads them.
pub(crate) trait KarrasParams {
    fn steps(&self) -> usize;
    fn sigma_bounds(&self) -> (Option<f64>, Option<f64>);
    fn rho(&self) -> f64;

    /// σ_0 > … > σ_{n−1} on the Karras grid (the prior's range unless overridden), then σ_n = 0.
    fn karras_grid(&self, sampler: &str, problem: &Problem) -> Result<Vec<f64>> {
        check_steps(sampler, self.steps())?;
        let (min, max) = self.sigma_bounds();
        let (lo, hi) = sigma_range(sampler, min, max, problem.prior.sigma_range())?;
        if !(self.rho().is_finite() && self.rho() > 0.0) {
            return Err(Error::invalid(
                sampler,
                format!("rho must be a positive number, got {}", self.rho()),
            ));
        }
        let mut sigmas = crate::schedule::karras(self.steps(), lo, hi, self.rho());
        sigmas.push(0.0);
        Ok(sigmas)
    }
}

/// Implements [`KarrasParams`] for parameter structs with the four standard fields.
macro_rules! karras_params {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::samplers::KarrasParams for $t {
            fn steps(&self) -> usize {
                self.steps
            }
            fn sigma_bounds(&self) -> (Option<f64>, Option<f64>) {
                (self.sigma_min, self.sigma_max)
            }
            fn rho(&self) -> f64 {
                self.rho
            }
        }
    )*};
}
karras_params!(
    PriorParams,
    DpsParams,
    EpsParams,
    DiffPirParams,
    PiGdmParams,
);

impl KarrasParams for DdrmParams {
    fn steps(&self) -> usize {
        self.steps
    }
    /// A warm start's σ is the top of the grid.
    fn sigma_bounds(&self) -> (Option<f64>, Option<f64>) {
        (self.sigma_min, self.warm.or(self.sigma_max))
    }
    fn rho(&self) -> f64 {
        self.rho
    }
}

impl KarrasParams for DapsParams {
    fn steps(&self) -> usize {
        self.steps
    }
    /// DAPS always has a floor of its own (`sigma_min` is not optional).
    fn sigma_bounds(&self) -> (Option<f64>, Option<f64>) {
        (Some(self.sigma_min), self.sigma_max)
    }
    fn rho(&self) -> f64 {
        self.rho
    }
}

/// What the EDM-family samplers share: the Karras grid σ_0 > … > σ_{n−1} followed by
/// σ_n = 0, the run's generator, and the chains, drawn at the start from N(0, σ_0² I).
pub(crate) struct EdmCore {
    pub sigmas: Vec<f64>,
    pub rng: tensor::Rng,
    pub state: ChainState,
}

impl EdmCore {
    /// The state started at the grid's top σ = w from the classical restoration plus w·z
    /// (`warm`: `params`' σ_max is w).
    pub(crate) fn warm(
        name: &str,
        params: &impl KarrasParams,
        problem: &Problem,
        chains: usize,
        seed: u64,
    ) -> Result<Self> {
        let w = params.sigma_bounds().1.unwrap_or(f64::NAN);
        let start = warm_start(name, w, problem)?;
        let mut core = Self::new(name, params, problem, chains, seed)?;
        core.state.x = core.state.x.clone() + start;
        Ok(core)
    }

    pub fn new(
        name: &str,
        params: &impl KarrasParams,
        problem: &Problem,
        chains: usize,
        seed: u64,
    ) -> Result<Self> {
        let sigmas = params.karras_grid(name, problem)?;
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let x = tensor::normal(&mut rng, [chains, c, h, w], &problem.device).mul_scalar(sigmas[0]);
        let state = ChainState {
            x0_hat: x.zeros_like(),
            x,
            sigma: sigmas[0],
            step: 0,
            total_steps: params.steps(),
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

/// `forward(x)` and the gradient of `loss(forward(x))` with respect to x, by one backward pass:
/// the vector-Jacobian product through the prior (DPS, ΠGDM) or a generator (CPS). `loss`
/// returns one value per chain; chains are independent, so each gets its own gradient.
pub(crate) fn grad_through(
    sampler: &str,
    x: &Tensor<4>,
    forward: impl FnOnce(Tensor<4>) -> Tensor<4>,
    loss: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Result<(Tensor<4>, Tensor<4>)> {
    let x = x.clone().detach().autodiff().require_grad();
    let out = forward(x.clone());
    let grads = loss(out.clone()).sum().backward();
    let grad = x
        .grad(&grads)
        .ok_or_else(|| Error::Backend(format!("{sampler}: no gradient reached the chains")))?
        .without_autodiff();
    Ok((out.detach().without_autodiff(), grad))
}

/// [`grad_through`] with `forward` = the prior's denoiser at σ: through the prior's own
/// pullback when it has one (a network on the CPU path: one host forward with a tape, autodiff
/// only through `loss`), else through autodiff.
pub(crate) fn grad_through_prior(
    sampler: &str,
    x: &Tensor<4>,
    prior: &dyn crate::priors::Denoiser,
    sigma: f64,
    loss: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Result<(Tensor<4>, Tensor<4>)> {
    let Some((out, pullback)) = prior.denoise_vjp(x, sigma) else {
        return grad_through(sampler, x, |x| prior.denoise(x, sigma), loss);
    };
    let leaf = out.clone().autodiff().require_grad();
    let grads = loss(leaf.clone()).sum().backward();
    let v = leaf
        .grad(&grads)
        .ok_or_else(|| Error::Backend(format!("{sampler}: no gradient reached the estimate")))?
        .without_autodiff();
    Ok((out, pullback(v)?))
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

/// ρ of the Karras grid when a recipe gives none (Karras et al. 2022).
pub(crate) fn default_rho() -> f64 {
    7.0
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

/// Most steps (or inner iterations) one sampler field may ask for: far beyond any useful run,
/// small enough that a typo (`steps: 1e11`) is refused up front instead of running for days or
/// allocating its schedule.
pub const MAX_ITERATIONS: usize = 1_000_000;

pub(crate) fn check_steps(sampler: &str, steps: usize) -> Result<()> {
    check_count(sampler, "steps", steps, 1)
}

/// A count field between `min` and [`MAX_ITERATIONS`].
pub(crate) fn check_count(sampler: &str, field: &str, value: usize, min: usize) -> Result<()> {
    if value < min || value > MAX_ITERATIONS {
        return Err(Error::invalid(
            sampler,
            format!("{field} must be between {min} and {MAX_ITERATIONS}, got {value}"),
        ));
    }
    Ok(())
}

/// The classical restoration a `warm` start at σ = `warm` begins from (DDRM, EPS,
/// noise-space Langevin): refused unless σ is positive and the operator has one.
pub(crate) fn warm_start(sampler: &str, warm: f64, problem: &Problem) -> Result<Tensor<4>> {
    if !(warm.is_finite() && warm > 0.0) {
        return Err(Error::invalid(
            sampler,
            format!("warm must be a positive σ, got {warm}"),
        ));
    }
    problem
        .classical_estimate()?
        .ok_or_else(|| Error::Unsupported {
            sampler: sampler.into(),
            reason: format!(
                "warm needs a classical restoration to start from, and {} has none; leave warm out",
                problem.operator.name()
            ),
        })
}

/// `warm` sets the top of the noise grid: a `sigma_max` beside it is refused.
pub(crate) fn check_warm_grid(
    sampler: &str,
    warm: Option<f64>,
    sigma_max: Option<f64>,
) -> Result<()> {
    if warm.is_some() && sigma_max.is_some() {
        return Err(Error::invalid(
            sampler,
            "warm is the grid's top: leave sigma_max unset",
        ));
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
