//! EPS — Exact Posterior Score (Mammadov, Kara et al. 2026) for linear Gaussian measurements.
//!
//! The posterior denoiser is an anisotropic denoiser at a shifted pivot:
//! E[x0 | x_σ, y] = D_Σ⋆(μ⋆), Σ⋆ = (I/σ² + AᵀA/σ_y²)⁻¹, μ⋆ = Σ⋆(x_σ/σ² + Aᵀy/σ_y²).
//! The unchanged EDM sampler (Euler, as in the paper, or Heun) with every D(x, σ) replaced by
//! this posterior denoiser samples the posterior. μ⋆ comes from the operator's structured
//! solve (closed form for masks, downsampling, grayscale, identity; CG for blur and matrices).
//!
//! - `Exact` mode (Gaussian-mixture priors): D_Σ⋆ is the mixture's exact anisotropic
//!   denoiser, computed in f64 — EPS is then an exact posterior sampler up to discretisation.
//! - `ZeroShot` mode (any prior): μ⋆ is fed to the ordinary denoiser D(μ⋆, σ); exact only when
//!   AᵀA ∝ I, otherwise a cheap approximation (App. D.2 of the paper).
//! - `steps: 1` is the one-call posterior mean: one Euler step from σ_max to 0 returns
//!   D_Σ⋆(μ⋆) at σ_max ≈ E[x0 | y].
//!
//! - `FineTuned` mode (network priors with a trained `NAME-eps` beside them): the fine-tuned
//!   denoiser D_θ(μ⋆, observation image, σ) of the paper's Algorithm 1, trained for the operator
//!   family (masks, 2× block-average super-resolution) and a σ_y range written in its card.
//!
//! `Auto` picks `Exact` for a mixture, `FineTuned` when a fine-tune matches the operator and
//! σ_y, `ZeroShot` otherwise; `summary`/the window name the mode used.

use super::{ChainState, Sampler, Solver};
use crate::error::{Error, Result};
use crate::linalg::{Cholesky, Mat};
use crate::problem::Problem;
use crate::tensor::{self};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Eps",
    preset: "Eps(steps: 20)",
    help: "Exact posterior score (Mammadov, Kara et al.): the denoiser is fed the pivot μ* (zero-shot for networks; exact for mixtures). Fields: steps, mode (Auto|Exact|ZeroShot|FineTuned; Auto uses the fine-tuned EPS network beside the prior when it matches the operator and σ_y), solver (Heun|Euler|Ancestral), sigma_min, sigma_max, rho, warm (start from the classical restoration at this σ).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::LinearGaussian,
    anneals: true,
    // On a 64² photo crop the bare preset lost to the naive answer on scratches (−1.90 dB:
    // the mask fine-tune) and denoising (−1.03: from σ_max a patch prior loses the colours);
    // zero-shot from the classical restoration at σ 0.5 gains on all four degradations.
    patch_preset: Some("Eps(steps: 20, warm: 0.5, mode: ZeroShot)"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EpsMode {
    /// Exact for a Gaussian-mixture prior, zero-shot otherwise.
    #[default]
    Auto,
    Exact,
    ZeroShot,
    /// The prior's fine-tuned EPS denoiser (an error when none matches the problem).
    FineTuned,
}

/// `Eps(steps: 20, mode: Auto, solver: Euler, sigma_min: 0.002, sigma_max: 80, rho: 7)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpsParams {
    /// Noise levels of the Karras grid; 1 gives the one-call posterior mean.
    pub steps: usize,
    #[serde(default)]
    pub mode: EpsMode,
    /// `Euler` (the paper's) or `Heun`; `Ancestral` adds the stochastic DDPM step.
    #[serde(default = "default_solver")]
    pub solver: Solver,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
    /// Start from the classical restoration plus σ·z at this σ (the grid's top) instead of
    /// from noise at σ_max: a patch prior cannot see a region's colour through high noise
    /// (as DDRM's `warm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<f64>,
}

/// Largest dimension for the exact (dense f64) mixture path; `Auto` goes zero-shot above it.
const EXACT_MAX_DIM: usize = 1024;

fn default_solver() -> Solver {
    Solver::Euler
}

/// Host-side pieces for the exact mixture path: A (dense) and y in f64.
struct ExactParts {
    a: Mat,
    aty: Vec<f64>,
}

pub struct Eps {
    params: EpsParams,
    exact: Option<ExactParts>,
    fine_tuned: bool,
    core: super::EdmCore,
}

impl Eps {
    pub fn new(params: EpsParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        let d = problem.dim();
        let gmm = problem
            .prior
            .gmm()
            .filter(|_| params.mode == EpsMode::Exact || d <= EXACT_MAX_DIM);
        if params.mode == EpsMode::Exact && d > EXACT_MAX_DIM {
            return Err(Error::Unsupported {
                sampler: "Eps".into(),
                reason: format!(
                    "mode Exact uses dense f64 algebra in d and d = {d} is above {EXACT_MAX_DIM}; use mode ZeroShot"
                ),
            });
        }
        let exact = match (params.mode, gmm) {
            (EpsMode::Exact, None) => {
                return Err(Error::Unsupported {
                    sampler: "Eps".into(),
                    reason: format!(
                        "mode Exact needs a Gaussian-mixture prior, not {}",
                        problem.prior.describe()
                    ),
                });
            }
            (EpsMode::Exact | EpsMode::Auto, Some(_)) => {
                let a = problem.operator.dense(&problem.device)?;
                let aty = a.tmatvec(&problem.y_f64()?);
                Some(ExactParts { a, aty })
            }
            _ => None,
        };
        let matching = problem
            .prior
            .eps_denoiser(problem.operator.as_ref(), problem.sigma_y)
            .is_some();
        if params.mode == EpsMode::FineTuned && !matching {
            return Err(Error::Unsupported {
                sampler: "Eps".into(),
                reason: format!(
                    "mode FineTuned needs a fine-tuned EPS denoiser for {} at sigma_y {} beside {}; use mode ZeroShot",
                    problem.operator.name(),
                    problem.sigma_y,
                    problem.prior.describe()
                ),
            });
        }
        let fine_tuned = exact.is_none()
            && matching
            && matches!(params.mode, EpsMode::Auto | EpsMode::FineTuned);
        let core = match params.warm {
            None => super::EdmCore::new(INFO.name, &params, problem, chains, seed)?,
            Some(w) => {
                super::check_warm_grid(INFO.name, Some(w), params.sigma_max)?;
                let grid = EpsParams {
                    sigma_max: Some(w),
                    ..params.clone()
                };
                super::EdmCore::warm(INFO.name, &grid, problem, chains, seed)?
            }
        };
        Ok(Self {
            params,
            exact,
            fine_tuned,
            core,
        })
    }

    /// The mode in use after `Auto` was resolved.
    pub fn mode_used(&self) -> EpsMode {
        if self.exact.is_some() {
            EpsMode::Exact
        } else if self.fine_tuned {
            EpsMode::FineTuned
        } else {
            EpsMode::ZeroShot
        }
    }

    /// E[x0 | x_σ = x, y] by the EPS identity.
    fn posterior_denoise(
        exact: Option<&ExactParts>,
        fine_tuned: bool,
        problem: &Problem,
        x: Tensor<4>,
        sigma: f64,
    ) -> Result<Tensor<4>> {
        let s2 = sigma * sigma;
        let sy2 = problem.sigma_y * problem.sigma_y;
        match exact {
            Some(parts) => {
                let gmm = problem
                    .prior
                    .gmm()
                    .ok_or_else(|| Error::Backend("Eps: mixture prior vanished".into()))?;
                let d = parts.a.cols;
                // Σ⋆ in f64; μ⋆ = Σ⋆(x/σ² + Aᵀy/σ_y²) per chain.
                let prec = Mat::identity(d)
                    .scale(1.0 / s2)
                    .add(&parts.a.transpose().matmul(&parts.a).scale(1.0 / sy2));
                let ch = Cholesky::new(&prec, "EPS precision")?;
                let sigma_star = ch.inverse();
                let dims = x.dims();
                let xs = tensor::to_f64(&x)?;
                let mut out = Vec::with_capacity(xs.len());
                let den = gmm.anisotropic(&sigma_star)?;
                for row in xs.chunks(d) {
                    let rhs: Vec<f64> = row
                        .iter()
                        .zip(&parts.aty)
                        .map(|(u, v)| u / s2 + v / sy2)
                        .collect();
                    out.extend(den.denoise(&ch.solve(&rhs)));
                }
                Ok(tensor::from_f64(&out, dims, &problem.device))
            }
            None => {
                let batch = x.dims()[0];
                let rhs = x.div_scalar(s2)
                    + problem
                        .operator
                        .adjoint(problem.y_batch(batch))
                        .div_scalar(sy2);
                let mu = problem
                    .operator
                    .solve_shifted(1.0 / s2, problem.sigma_y, rhs);
                let tuned = problem
                    .prior
                    .eps_denoiser(problem.operator.as_ref(), problem.sigma_y)
                    .filter(|_| fine_tuned);
                Ok(match tuned {
                    Some(net) => {
                        let obs = crate::operators::observation_image(
                            problem.operator.as_ref(),
                            problem.y_batch(batch),
                        );
                        net.denoise(mu, obs, sigma)
                    }
                    None => problem.prior.denoise(mu, sigma),
                })
            }
        }
    }
}

impl Sampler for Eps {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        let Some((s, s_next)) = self.core.levels() else {
            return Ok(());
        };
        let x = self.core.state.x.clone();
        let fine = self.fine_tuned;
        let x0 = Self::posterior_denoise(self.exact.as_ref(), fine, problem, x.clone(), s)?;
        self.core.state.nfe += 1;
        let exact = self.exact.as_ref();
        let (next, extra) = super::edm_step(
            self.params.solver,
            (x, x0.clone()),
            (s, s_next),
            &mut self.core.rng,
            |x, s| Self::posterior_denoise(exact, fine, problem, x, s),
        )?;
        self.core.state.nfe += extra;
        self.core.state.advance(next, x0, s_next);
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.core.state
    }

    fn detail(&self) -> Option<String> {
        Some(format!("mode {:?}", self.mode_used()))
    }
}
