//! How an imported network's output becomes this program's denoiser D(x, σ) (x = x₀ + σ·n):
//!
//! - a DDPM (guided-diffusion, diffusers) is trained on x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, which is
//!   x/√(1+σ²) at σ_t = √((1−ᾱ_t)/ᾱ_t); so D(x, σ) = x − σ ε(x/√(1+σ²), t(σ)) (ε-prediction;
//!   v- and x₀-prediction converted to it);
//! - a consistency model gives f(x, σ) = c_skip x + c_out F(c_in x, 250 ln σ) directly.
//!
//! Between the table's σ the timestep is fractional, interpolated in log σ (guided-diffusion's
//! and diffusers' time embeddings are continuous); `Nearest` rounds to the closest entry, as
//! EDM's iDDPM wrapper does. Outside the table σ is clamped to its ends: below σ_0 the network
//! sees t = 0 (D is then nearly the identity anyway), above σ_{T−1} the samplers never ask (the
//! prior's σ range is the table's).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// β linear in t from `start` to `end` (guided-diffusion's "linear" scales both by 1000/T).
    Linear { start: f64, end: f64 },
    /// √β linear (diffusers' "scaled_linear").
    ScaledLinear { start: f64, end: f64 },
    /// ᾱ(t) = cos²((t/T + 0.008)/1.008 · π/2), β capped at 0.999 (Nichol & Dhariwal).
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prediction {
    Epsilon,
    /// v = √ᾱ ε − √(1−ᾱ) x₀.
    V,
    /// x₀ itself.
    Sample,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestepRule {
    Fractional,
    Nearest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Parameterisation {
    Ddpm {
        betas: BetaSchedule,
        steps: usize,
        prediction: Prediction,
        #[serde(default = "fractional")]
        timesteps: TimestepRule,
        /// guided-diffusion's `rescale_timesteps`: the network sees t·1000/T.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rescale_timesteps: bool,
    },
    Consistency {
        sigma_min: f64,
        sigma_max: f64,
        sigma_data: f64,
    },
}

fn fractional() -> TimestepRule {
    TimestepRule::Fractional
}

impl BetaSchedule {
    pub fn betas(&self, steps: usize) -> Vec<f64> {
        let n = steps.max(1);
        let lin = |a: f64, b: f64, i: usize| {
            if n == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (n - 1) as f64
            }
        };
        match *self {
            BetaSchedule::Linear { start, end } => (0..n).map(|i| lin(start, end, i)).collect(),
            BetaSchedule::ScaledLinear { start, end } => (0..n)
                .map(|i| lin(start.sqrt(), end.sqrt(), i).powi(2))
                .collect(),
            BetaSchedule::Cosine => {
                let f = |t: f64| {
                    ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..n)
                    .map(|i| {
                        (1.0 - f((i + 1) as f64 / n as f64) / f(i as f64 / n as f64)).min(0.999)
                    })
                    .collect()
            }
        }
    }
}

/// The network's input scaling, its time input and how its output maps to D, at one σ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The network sees `c_in · x`.
    pub c_in: f64,
    /// Its time input.
    pub t: f64,
    /// D = c_skip·x + c_out·F.
    pub c_skip: f64,
    pub c_out: f64,
}

/// A parameterisation with its σ table.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub kind: Parameterisation,
    /// σ_t for t = 0..T−1 (DDPMs), increasing.
    pub sigmas: Vec<f64>,
}

impl Schedule {
    pub fn new(kind: Parameterisation) -> Self {
        let sigmas = match &kind {
            Parameterisation::Ddpm { betas, steps, .. } => {
                let mut abar = 1.0;
                betas
                    .betas(*steps)
                    .into_iter()
                    .map(|b| {
                        abar *= 1.0 - b;
                        ((1.0 - abar) / abar).sqrt()
                    })
                    .collect()
            }
            Parameterisation::Consistency { .. } => vec![],
        };
        Self { kind, sigmas }
    }

    /// The σ range it is defined on.
    pub fn range(&self) -> (f64, f64) {
        match &self.kind {
            Parameterisation::Consistency {
                sigma_min,
                sigma_max,
                ..
            } => (*sigma_min, *sigma_max),
            Parameterisation::Ddpm { .. } => (
                self.sigmas.first().copied().unwrap_or(0.01),
                self.sigmas.last().copied().unwrap_or(1.0),
            ),
        }
    }

    /// The (fractional) timestep of σ on the table, clamped to its ends.
    pub fn timestep(&self, sigma: f64, rule: TimestepRule) -> f64 {
        let s = &self.sigmas;
        let Some(last) = s.len().checked_sub(1) else {
            return 0.0;
        };
        if sigma <= s[0] {
            return 0.0;
        }
        if sigma >= s[last] {
            return last as f64;
        }
        let hi = s.partition_point(|v| *v < sigma).clamp(1, last);
        let (a, b) = (s[hi - 1].ln(), s[hi].ln());
        let frac = if b > a {
            (sigma.ln() - a) / (b - a)
        } else {
            0.0
        };
        match rule {
            TimestepRule::Fractional => (hi - 1) as f64 + frac,
            TimestepRule::Nearest => (hi - 1) as f64 + frac.round(),
        }
    }

    /// How to call the network at σ for ε-prediction (the others are converted in
    /// [`Schedule::combine`]).
    pub fn step(&self, sigma: f64) -> Step {
        match &self.kind {
            Parameterisation::Ddpm {
                steps,
                timesteps,
                rescale_timesteps,
                ..
            } => {
                let t = self.timestep(sigma, *timesteps);
                let t = if *rescale_timesteps {
                    t * 1000.0 / *steps as f64
                } else {
                    t
                };
                Step {
                    c_in: 1.0 / (1.0 + sigma * sigma).sqrt(),
                    t,
                    c_skip: 1.0,
                    c_out: -sigma,
                }
            }
            Parameterisation::Consistency {
                sigma_min,
                sigma_data,
                ..
            } => {
                let (sd, d) = (*sigma_data, sigma - sigma_min);
                Step {
                    c_in: 1.0 / (sigma * sigma + sd * sd).sqrt(),
                    t: 250.0 * (sigma + 1e-44).ln(),
                    c_skip: sd * sd / (d * d + sd * sd),
                    c_out: d * sd / (sigma * sigma + sd * sd).sqrt(),
                }
            }
        }
    }

    /// (a, b) with D = a·x + b·F for the network's prediction type at σ.
    pub fn combine(&self, sigma: f64) -> (f64, f64) {
        let s = self.step(sigma);
        match &self.kind {
            Parameterisation::Ddpm { prediction, .. } => {
                // In VP terms: √ᾱ = c_in, √(1−ᾱ) = σ c_in, and x_t = c_in x.
                let (a, r) = (s.c_in, sigma * s.c_in);
                match prediction {
                    Prediction::Epsilon => (1.0, -sigma),
                    // x₀ = √ᾱ x_t − √(1−ᾱ) v = a² x − r v.
                    Prediction::V => (a * a, -r),
                    Prediction::Sample => (0.0, 1.0),
                }
            }
            Parameterisation::Consistency { .. } => (s.c_skip, s.c_out),
        }
    }
}
