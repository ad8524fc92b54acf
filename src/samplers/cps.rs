//! Noise-space Langevin / CPS (Purohit, Repasky, Lu, Qiu, Xie, Cheng; CVPR 2025).
//!
//! A deterministic generator x = Φ(z) maps noise to data: the prior's distilled one-step
//! consistency model (`NAME-cm` beside a network prior) when it covers the start — one network
//! call per Φ, as in the paper — otherwise the prior's probability-flow ODE from σ_max·z to 0 in
//! `generator_steps` Heun steps (fixed grid, no fresh noise, so Φ is a function).
//! `generator: Ode` forces the ODE, `generator: Distilled` requires the distilled model.
//! `warm: σ_w` starts Φ from the classical restoration plus σ_w·z at σ_w instead (a patch
//! prior's Φ from σ_max hardly moves a region's colour with z, so its warm-up cannot fit y):
//! Φ_w(z) = f(x_c + σ_w z, σ_w) with a distilled generator, else the ODE from there. A
//! generator distilled only up to some σ (`top` on its card) serves warm starts at or below it.
//! - Warm-up: Adam (lr `warmup_lr`) on ‖y − A(Φ(z))‖², `warmup` steps.
//! - Langevin in z on π(z) ∝ exp(−c‖z‖²/2 − ‖y − A(Φ(z))‖²/(2σ_y²)):
//!   z ← z − τ c z − τ ∇_z ‖y − AΦ(z)‖²/(2σ_y²) + √(2τ) ξ, gradients through Φ by autodiff.
//!   `drift: Paper` uses c = 1 (the paper's N(0, I) prior on z); `drift: Code` uses the
//!   official code's c = 1/σ_max², about 1/6400 of it, which leaves the chain near the
//!   warm-up optimum (its "diversity" then comes from short chains).
//!
//! Every iterate after the warm-up is a posterior sample; `samples` returns the last.
//! τ defaults to 0.02/(1 + ‖A‖²/σ_y²): a tenth of the stable step when Φ is 1-Lipschitz,
//! because a few-step ODE generator can be far stiffer than that. `clamp` clips Φ to [-1, 1] as the official code does for images (off by default:
//! it zeroes gradients in saturated pixels).

use super::{ChainState, Sampler, check_steps};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::schedule;
use crate::tensor::{self, Rng};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "NoiseSpaceLangevin",
    preset: "NoiseSpaceLangevin(steps: 100)",
    help: "Langevin in the noise z of a deterministic generator x = Φ(z) (Purohit et al.); Adam warm-up first. Fields: steps, warmup, warmup_lr, generator (Auto|Distilled|Ode; Auto uses the distilled one-step model beside the prior when it covers the start), generator_steps (ODE), step, drift (Paper|Code), clamp, warm (Φ starts from the classical restoration plus σ·z at this σ; photos need it).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: false,
    // From σ_max a patch prior's Φ hardly moves colours with z (docs/photo-table.md).
    patch_preset: Some("NoiseSpaceLangevin(steps: 100, warm: 0.5, warmup_lr: 0.02)"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Drift {
    /// c = 1: the N(0, I) prior on z stated in the paper.
    #[default]
    Paper,
    /// c = 1/σ_max²: the official code.
    Code,
}

/// Which Φ to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum GeneratorChoice {
    /// The distilled one-step generator when the prior has one, else the ODE.
    #[default]
    Auto,
    /// The prior's distilled one-step consistency generator (an error if it has none).
    Distilled,
    /// The few-step probability-flow ODE of the prior.
    Ode,
}

/// `NoiseSpaceLangevin(steps: 200, warmup: 200, warmup_lr: 0.005, generator_steps: 8, generator: Auto, step: None, drift: Paper, clamp: false)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpsParams {
    /// Langevin steps after the warm-up.
    pub steps: usize,
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    #[serde(default = "default_lr")]
    pub warmup_lr: f64,
    /// Heun steps of the ODE generator (unused by the distilled one).
    #[serde(default = "default_gen")]
    pub generator_steps: usize,
    #[serde(default)]
    pub generator: GeneratorChoice,
    /// Langevin step τ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    #[serde(default)]
    pub drift: Drift,
    #[serde(default)]
    pub clamp: bool,
    /// Φ(z) starts from the classical restoration plus σ·z at this σ instead of from σ_max·z.
    /// A patch prior cannot see a region's colour through high noise, so from σ_max its Φ
    /// hardly moves colours with z and the warm-up cannot fit y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<f64>,
}

fn default_warmup() -> usize {
    200
}
fn default_lr() -> f64 {
    0.005
}
fn default_gen() -> usize {
    8
}

pub struct NoiseSpaceLangevin {
    params: CpsParams,
    distilled: bool,
    /// The classical restoration Φ starts from (`warm`), [1, C, H, W].
    start: Option<Tensor<4>>,
    grid: Vec<f64>,
    tau: f64,
    z: Tensor<4>,
    adam_m: Tensor<4>,
    adam_v: Tensor<4>,
    rng: Rng,
    state: ChainState,
}

impl NoiseSpaceLangevin {
    pub fn new(params: CpsParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        check_steps("NoiseSpaceLangevin", params.steps)?;
        super::check_count(INFO.name, "warmup", params.warmup, 0)?;
        super::check_count(INFO.name, "generator_steps", params.generator_steps, 1)?;
        if params.generator_steps == 0 || !(params.warmup_lr > 0.0) {
            return Err(Error::invalid(
                "NoiseSpaceLangevin",
                "need generator_steps >= 1 and warmup_lr > 0",
            ));
        }
        let (lo, hi) = problem.prior.sigma_range();
        let start = match params.warm {
            None => None,
            Some(w) => Some(super::warm_start(INFO.name, w, problem)?),
        };
        let warm_level = params.warm.map(|w| w.min(hi));
        // The distilled generator serves a start it was distilled for: pure noise for a cold
        // one, a warm σ at or below its top for either.
        let generator = problem.prior.generator();
        let covers = generator.is_some_and(|g| match warm_level {
            Some(w) => w <= g.top() * (1.0 + 1e-9),
            None => g.cold(),
        });
        let distilled = match params.generator {
            GeneratorChoice::Ode => false,
            GeneratorChoice::Auto => covers,
            GeneratorChoice::Distilled if covers => true,
            GeneratorChoice::Distilled => {
                let reason = match generator {
                    None => format!(
                        "generator Distilled needs a distilled one-step model beside {}; use generator Ode",
                        problem.prior.describe()
                    ),
                    Some(g) => format!(
                        "the one-step model beside {} was distilled only up to σ {}: set warm at or below it, or use generator Ode",
                        problem.prior.describe(),
                        g.top()
                    ),
                };
                return Err(Error::Unsupported {
                    sampler: INFO.name.into(),
                    reason,
                });
            }
        };
        // The σ that Φ starts from.
        let hi = match (warm_level, generator.filter(|_| distilled)) {
            (Some(w), _) => w,
            (None, Some(g)) => g.top(),
            (None, None) => hi,
        };
        let mut grid = schedule::karras(params.generator_steps, lo, hi, 7.0);
        grid.push(0.0);
        let tau = match params.step {
            Some(t) if t > 0.0 && t.is_finite() => t,
            Some(t) => {
                return Err(Error::invalid(
                    "NoiseSpaceLangevin",
                    format!("step must be positive, got {t}"),
                ));
            }
            None => {
                0.02 / (1.0
                    + problem.operator.norm_sq(&problem.device)?
                        / (problem.sigma_y * problem.sigma_y))
            }
        };
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let z = tensor::normal(&mut rng, [chains, c, h, w], &problem.device);
        let state = ChainState {
            x: match &start {
                Some(s) => s.clone().expand([chains, c, h, w]) + z.clone().mul_scalar(hi),
                None => z.clone().mul_scalar(hi),
            },
            x0_hat: z.zeros_like(),
            sigma: hi,
            step: 0,
            total_steps: params.warmup + params.steps,
            nfe: 0,
        };
        Ok(Self {
            params,
            distilled,
            start,
            grid,
            tau,
            adam_m: z.zeros_like(),
            adam_v: z.zeros_like(),
            z,
            rng,
            state,
        })
    }

    /// Where Φ(z) starts, at σ = grid[0]: σ·z, or the classical restoration plus σ·z (`warm`).
    fn origin(&self, z: Tensor<4>) -> Tensor<4> {
        let noise = z.clone().mul_scalar(self.grid[0]);
        match &self.start {
            Some(s) => s.clone().expand(z.dims()) + noise,
            None => noise,
        }
    }

    /// Φ(z): the distilled generator's one call f(origin, σ), or the Heun probability-flow ODE
    /// from the origin to 0 on a fixed grid.
    fn generate(&mut self, problem: &Problem, z: Tensor<4>) -> Tensor<4> {
        let x = match problem.prior.generator().filter(|_| self.distilled) {
            Some(g) => {
                self.state.nfe += 1;
                g.consistency(self.origin(z), self.grid[0])
            }
            None => self.ode(problem, z),
        };
        if self.params.clamp {
            x.clamp(-1.0, 1.0)
        } else {
            x
        }
    }

    fn ode(&mut self, problem: &Problem, z: Tensor<4>) -> Tensor<4> {
        let mut x = self.origin(z);
        for k in 0..self.params.generator_steps {
            let (s, sn) = (self.grid[k], self.grid[k + 1]);
            let d = (x.clone() - problem.prior.denoise(x.clone(), s)).div_scalar(s);
            self.state.nfe += 1;
            let euler = x.clone() + d.clone().mul_scalar(sn - s);
            x = if sn > 0.0 {
                let d2 = (euler.clone() - problem.prior.denoise(euler, sn)).div_scalar(sn);
                self.state.nfe += 1;
                x + (d + d2).mul_scalar(0.5 * (sn - s))
            } else {
                euler
            };
        }
        x
    }

    /// (Φ(z), ∇_z ‖y − AΦ(z)‖²) for every chain.
    fn fit_grad(&mut self, problem: &Problem) -> Result<(Tensor<4>, Tensor<4>)> {
        let z = self.z.clone();
        // The distilled generator is one network call: its pullback (the network's CPU path)
        // replaces autodiff through it; Φ(z) = f(origin + σ z, σ), so ∇_z = σ · pullback.
        let one_call = problem
            .prior
            .generator()
            .filter(|_| self.distilled && !self.params.clamp);
        if let Some(g) = one_call {
            let hi = self.grid[0];
            if let Some((x, pullback)) = g.denoise_vjp(&self.origin(z.clone()), hi) {
                self.state.nfe += 1;
                let leaf = x.clone().autodiff().require_grad();
                let grads = problem.misfit(leaf.clone()).sum().backward();
                let v = leaf
                    .grad(&grads)
                    .ok_or_else(|| {
                        Error::Backend(format!("{}: no gradient reached Φ(z)", INFO.name))
                    })?
                    .without_autodiff();
                return Ok((x, pullback(v)?.mul_scalar(hi)));
            }
        }
        super::grad_through(
            INFO.name,
            &z,
            |z| self.generate(problem, z),
            |x| problem.misfit(x),
        )
    }
}

impl Sampler for NoiseSpaceLangevin {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        let k = self.state.step;
        let (x, g) = self.fit_grad(problem)?;
        if k < self.params.warmup {
            // Adam (β = 0.9, 0.999) on ‖y − AΦ(z)‖².
            let t = (k + 1) as i32;
            self.adam_m = self.adam_m.clone().mul_scalar(0.9) + g.clone().mul_scalar(0.1);
            self.adam_v = self.adam_v.clone().mul_scalar(0.999) + g.square().mul_scalar(0.001);
            let m_hat = self.adam_m.clone().div_scalar(1.0 - 0.9f64.powi(t));
            let v_hat = self.adam_v.clone().div_scalar(1.0 - 0.999f64.powi(t));
            self.z = self.z.clone()
                - (m_hat / v_hat.sqrt().add_scalar(1e-8)).mul_scalar(self.params.warmup_lr);
        } else {
            let c = match self.params.drift {
                Drift::Paper => 1.0,
                Drift::Code => 1.0 / (self.grid[0] * self.grid[0]),
            };
            let sy2 = problem.sigma_y * problem.sigma_y;
            let noise = tensor::normal(&mut self.rng, g.dims(), &problem.device);
            let drift = self.z.clone().mul_scalar(c) + g.div_scalar(2.0 * sy2);
            self.z = self.z.clone() - drift.mul_scalar(self.tau)
                + noise.mul_scalar((2.0 * self.tau).sqrt());
        }
        self.state.step += 1;
        // Show (and, at the end, return) the image of the current z.
        let shown = if self.is_done() {
            self.generate(problem, self.z.clone())
        } else {
            x
        };
        self.state.x = shown.clone();
        self.state.x0_hat = shown;
        self.state.sigma = 0.0;
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }

    fn detail(&self) -> Option<String> {
        let generator = if self.distilled {
            "generator: distilled one-step consistency model".to_string()
        } else {
            format!(
                "generator: probability-flow ODE, {} Heun steps",
                self.params.generator_steps
            )
        };
        Some(match self.start {
            Some(_) => format!(
                "{generator}, started at sigma {} from the classical restoration",
                self.grid[0]
            ),
            None => generator,
        })
    }
}
