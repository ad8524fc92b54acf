//! ALMC — likelihood-first annealed Langevin Monte Carlo (Parulekar, Rout, Shanmugam,
//! Shakkottai; ICLR 2026).
//!
//! Works on the OU/VP state u, whose prior marginals p_t are the VE-noised prior at
//! σ(t) = √(e^{2t} − 1) scaled by e^{−t}, so ∇log p_t(u) = e^t·s_VE(e^t u, σ(t)).
//! Target path: μ_t(u) ∝ p_t(u)·exp(−R(u)), R(u) = ‖y − A u‖²/(2σ_y²).
//!
//! - Phase 1 (`warmup` steps, no prior call): Langevin on N(0, I)·exp(−R), the t → ∞ end:
//!   u ← u + δ(−u − ∇R(u)) + √(2δ) ξ.
//! - Phase 2 (`steps` steps): u ← u + δ(∇log p_t(u) − ∇R(u)) + √(2δ) ξ while the prior time
//!   falls from `t_max` to `tau` at rate 1/κ per unit of Langevin time (t_k = T − kδ/κ).
//! - Output: u is a sample of μ_τ (the paper's guarantee). With `final_denoise` (default)
//!   the returned sample is the Tweedie estimate D(e^τ u, σ(τ)) — a practical clean-up that
//!   is not part of the paper's guarantee; with it off, e^τ u is returned.
//!
//! - `precondition` (default on): Langevin in the metric M = (I + A^T A/σ_y^2)^-1 for a linear A,
//!   u ← u + δ M(∇log p_t(u) − ∇R(u)) + √(2δ) M^{1/2} ξ, with M^{1/2}ξ drawn as M(ξ₁ + Aᵀξ₂/σ_y).
//!   A constant SPD metric leaves every target μ_t unchanged; it removes the data term's
//!   stiffness (the Gaussian end N(0, I)·exp(−R) becomes a unit-rate Ornstein–Uhlenbeck), so
//!   δ is limited by the prior alone. Without it (the paper's plain Langevin) δ must stay below
//!   ~1/(1 + ‖A‖²/σ_y²), which at σ_y = 0.05 leaves 300 steps far too little Langevin time to
//!   fill a missing region (measured on Fashion-MNIST box inpainting: worse than the naive y).
//!
//! δ defaults to (1 − e^{−2τ}) with preconditioning — the critically damped step for the
//! prior's stiffest direction at the stop time (a score of Lipschitz constant 1/(1 − e^{−2τ})
//! for data near a low-dimensional set); measured on Fashion-MNIST box inpainting (400 steps,
//! T = 1): a quarter of it gives 19.9 dB, half 21.3, this 22.2, twice 22.5 (DPS: 22.2) — and to 0.5/(1 + ‖A‖²/σ_y²) (‖A‖² by power iteration)
//! without; κ = δ·steps/(T − τ) follows; giving `kappa` instead sets δ = κ(T − τ)/steps.
//! Phase 1 uses its own step, 0.1 with preconditioning (the Gaussian end has unit stiffness
//! then), δ without. τ defaults to the OU time of σ = 0.1 (the final Tweedie denoise removes the
//! rest); smaller τ needs proportionally more steps. T defaults to 1 (σ(1) ≈ 2.5, where images
//! in [-1, 1] are nearly Gaussian): the annealing then has κ ≈ 4 at 400 steps, while T = 5
//! (σ ≈ 148) would spend most steps where the prior is already Gaussian (measured 18.1 dB at
//! 300 steps). Data of larger scale (the mixture beds) needs a larger T.

use super::{ChainState, Sampler, check_steps};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::schedule::{ou_time_from_sigma, sigma_from_ou_time};
use crate::tensor::{self, Rng};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Almc",
    preset: "Almc(steps: 400)",
    help: "Likelihood-first annealed Langevin (Parulekar et al.): Langevin on N(0,I)e^{-R}, then anneal the prior in. Fields: steps, warmup, t_max, tau, delta, kappa, precondition (Langevin in the metric (I + A^T A/σ_y^2)^-1: same targets, no data-term stiffness), final_denoise.",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

/// `Almc(steps: 400, warmup: 200, t_max: 1.0, tau: 0.005, delta: None, kappa: None, precondition: true, final_denoise: true)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlmcParams {
    /// Phase-2 (annealed) Langevin steps, one prior call each.
    pub steps: usize,
    /// Phase-1 (likelihood-only) Langevin steps.
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Start time T of the OU prior path (σ(1) ≈ 2.5; σ(5) ≈ 148).
    #[serde(default = "default_t_max")]
    pub t_max: f64,
    /// Stop time τ > 0 (default: the OU time of σ = 0.1).
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Langevin step δ (default: stable for the data term; see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Annealing slowness κ (sets δ = κ(T − τ)/steps when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa: Option<f64>,
    /// Langevin in the metric (I + A^T A/σ_y^2)^-1 (same targets, no data-term stiffness).
    #[serde(default = "default_true")]
    pub precondition: bool,
    #[serde(default = "default_true")]
    pub final_denoise: bool,
}

fn default_warmup() -> usize {
    200
}
fn default_t_max() -> f64 {
    1.0
}
fn default_tau() -> f64 {
    ou_time_from_sigma(0.1)
}
fn default_true() -> bool {
    true
}

pub struct Almc {
    params: AlmcParams,
    delta: f64,
    /// Phase-1 step.
    warm_delta: f64,
    kappa: f64,
    /// The OU state u.
    u: Tensor<4>,
    /// Preconditioning was asked for but the measurement is not linear-Gaussian.
    plain_metric: bool,
    rng: Rng,
    state: ChainState,
}

impl Almc {
    pub fn new(params: AlmcParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        check_steps("Almc", params.steps)?;
        // The metric needs AᵀA and its solve: beyond linear-Gaussian measurements the chains
        // run in the plain metric (same targets, smaller steps).
        let mut params = params;
        let plain_metric = params.precondition && !problem.is_linear_gaussian();
        params.precondition &= !plain_metric;
        super::check_count(INFO.name, "warmup", params.warmup, 0)?;
        let (t, tau) = (params.t_max, params.tau);
        if !(tau > 0.0 && t > tau && t.is_finite()) {
            return Err(Error::invalid(
                "Almc",
                format!("need 0 < tau < t_max, got tau {tau} and t_max {t}"),
            ));
        }
        let lip =
            1.0 + problem.operator.norm_sq(&problem.device)? / (problem.sigma_y * problem.sigma_y);
        let (delta, kappa) = match (params.delta, params.kappa) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "Almc",
                    "give delta or kappa, not both (steps links them)",
                ));
            }
            (Some(d), None) => (d, d * params.steps as f64 / (t - tau)),
            (None, Some(k)) => (k * (t - tau) / params.steps as f64, k),
            (None, None) => {
                let d = if params.precondition {
                    1.0 - (-2.0 * tau).exp()
                } else {
                    0.5 / lip
                };
                (d, d * params.steps as f64 / (t - tau))
            }
        };
        if !(delta > 0.0 && delta.is_finite()) {
            return Err(Error::invalid(
                "Almc",
                format!("delta must be positive, got {delta}"),
            ));
        }
        if !params.precondition && delta * lip > 2.0 {
            return Err(Error::invalid(
                "Almc",
                format!(
                    "delta {delta:.3e} is unstable for this data term (needs < {:.3e}); lower delta or kappa, or raise steps",
                    2.0 / lip
                ),
            ));
        }
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let u = tensor::normal(&mut rng, [chains, c, h, w], &problem.device);
        let sigma = sigma_from_ou_time(t);
        let state = ChainState {
            x: u.clone().mul_scalar(t.exp()),
            x0_hat: u.zeros_like(),
            sigma,
            step: 0,
            total_steps: params.warmup + params.steps,
            nfe: 0,
        };
        let warm_delta = if params.precondition { 0.1 } else { delta };
        Ok(Self {
            params,
            delta,
            warm_delta,
            kappa,
            u,
            rng,
            state,
            plain_metric,
        })
    }

    /// The annealing slowness κ in use.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// M v with M = (I + A^T A/σ_y^2)^-1, or v without preconditioning.
    fn metric(&self, problem: &Problem, v: Tensor<4>) -> Tensor<4> {
        if self.params.precondition {
            problem.operator.solve_shifted(1.0, problem.sigma_y, v)
        } else {
            v
        }
    }

    /// √(2δ) M^{1/2} ξ: M(ξ₁ + Aᵀξ₂/σ_y) has covariance M(I + AᵀA/σ_y²)M = M.
    fn noise(&mut self, problem: &Problem, delta: f64, dims: [usize; 4]) -> Tensor<4> {
        let xi = tensor::normal(&mut self.rng, dims, &problem.device);
        let xi = if self.params.precondition {
            let [c, h, w] = problem.operator.output_shape();
            let xi2 = tensor::normal(&mut self.rng, [dims[0], c, h, w], &problem.device);
            let v = xi + problem.operator.adjoint(xi2).div_scalar(problem.sigma_y);
            problem.operator.solve_shifted(1.0, problem.sigma_y, v)
        } else {
            xi
        };
        xi.mul_scalar((2.0 * delta).sqrt())
    }
}

impl Sampler for Almc {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        let k = self.state.step;
        let u = self.u.clone();
        let grad_r = problem.data_grad(u.clone());
        let (t_max, tau) = (self.params.t_max, self.params.tau);
        if k < self.params.warmup {
            // Phase 1: the Gaussian end of the path, likelihood only.
            let dw = self.warm_delta;
            let noise = self.noise(problem, dw, u.dims());
            let drift = self.metric(problem, u.clone().neg() - grad_r);
            self.u = u + drift.mul_scalar(dw) + noise;
            self.state.x = self.u.clone().mul_scalar(t_max.exp());
            self.state.sigma = sigma_from_ou_time(t_max);
        } else {
            let j = k - self.params.warmup;
            let t = t_max - j as f64 * (t_max - tau) / self.params.steps as f64;
            let (et, s) = (t.exp(), sigma_from_ou_time(t));
            let xv = u.clone().mul_scalar(et);
            let d = problem.prior.denoise(xv.clone(), s);
            self.state.nfe += 1;
            let prior_score = (d.clone() - xv).mul_scalar(et / (s * s));
            let noise = self.noise(problem, self.delta, u.dims());
            let drift = self.metric(problem, prior_score - grad_r);
            self.u = u + drift.mul_scalar(self.delta) + noise;
            let t_next = t - (t_max - tau) / self.params.steps as f64;
            self.state.sigma = sigma_from_ou_time(t_next.max(tau));
            self.state.x = self.u.clone().mul_scalar(t_next.max(tau).exp());
            self.state.x0_hat = d;
        }
        self.state.step += 1;
        if self.is_done() {
            let x = self.u.clone().mul_scalar(tau.exp());
            self.state.x0_hat = if self.params.final_denoise {
                self.state.nfe += 1;
                problem.prior.denoise(x, sigma_from_ou_time(tau))
            } else {
                x
            };
        }
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }

    fn detail(&self) -> Option<String> {
        self.plain_metric
            .then(|| "plain metric: the measurement is not linear-Gaussian".into())
    }
}
