//! How long a run will take, said before Run: network evaluations × chains × pixels at a
//! measured speed. The speed starts from the photo benchmark on a 2-core CPU
//! (docs/photo-table.md) and is corrected by every finished run on this machine, so after one
//! run the estimate is this machine's (a GPU's, too).

use crate::operators::Task;
use crate::samplers::auto::{self, PriorKind};
use crate::samplers::{self, SamplerSpec};

/// Seconds per network evaluation, per chain and pixel, on the reference 2-core CPU: DDRM with
/// 50 steps on 4 chains of 256² took 22.4 s (`posterior-lab bench --photo --sizes 256 --only
/// sr2 --lines "Ddrm(steps: 50)"`, session 17: 1.71e-6; it was 2.5e-6 before the direct
/// convolutions), and 12 steps on a 2560×1440 photo's damaged tiles 230 s (1.6e-6); a
/// gradient through the network (ΠGDM, DPS) costs about 1.9 evaluations (43.4 s for ΠGDM 50
/// on scratches).
const SECONDS_PER_NFE_PIXEL: f64 = 1.71e-6;
const GRADIENT_COST: f64 = 1.9;
/// A step of noise-space Langevin through a one-step generator (its call and pullback), in
/// evaluations: 301 steps took 127.6 s where `Ddrm(steps: 30, warm: 0.5)` took 9.4 s (256²
/// scratches, 4 chains, `photo` and `photo-cm`; docs/photo-table.md).
const ONE_CALL_STEP_COST: f64 = 1.35;
/// One evaluation inside noise-space Langevin's ODE generator (the taped forward pass and its
/// pullback), in evaluations: 21 iterations of 15 evaluations took 250 s where `Ddrm(steps:
/// 50)` took 5.4 s (128² 2× super-resolution, 4 chains, `photo`): 7.3×; 6.6× with 4 Heun steps.
const ODE_NFE_COST: f64 = 7.0;

/// FLOPs per pixel of one evaluation of the reference network (`photo`: base 16, [1, 2, 4], one
/// block per level, colour: 0.4466 GFLOP per 64×64 image).
const REFERENCE_FLOPS_PER_PIXEL: f64 = 0.4466e9 / 4096.0;
/// The share of a step's time that grows with the network's arithmetic (the rest: the
/// operator, noise, normalisation, copies), fitted to DDRM 50 at 256² on 4 chains with the two
/// photo priors: 32.8 s for `photo` and 95.4 s for `photo64` (3.97× its FLOPs).
const NETWORK_SHARE: f64 = 0.643;

/// A network's seconds per evaluation and pixel against the reference photo prior's.
pub fn network_cost(card: &crate::priors::ModelCard) -> f64 {
    let per_pixel = card.flops_per_pixel();
    (1.0 - NETWORK_SHARE) + NETWORK_SHARE * per_pixel / REFERENCE_FLOPS_PER_PIXEL
}

/// What the cost of a sampler line depends on besides the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Situation {
    pub task: Task,
    /// A measurement beyond linear-Gaussian (nonlinear A, photon noise): `Auto` reads its
    /// `GENERAL` table.
    pub general: bool,
    pub prior: PriorKind,
    /// The prior's one-step generator ([`super::catalog::PriorEntry::generator_top`]).
    pub generator_top: Option<f64>,
    /// Inpainting with a prior run in tiles: the share of the tiles that hold a missing pixel
    /// ([`crate::priors::Denoiser::share_of_work`]) and σ_y. DDRM then evaluates only those
    /// tiles while σ is above σ_y.
    pub damage: Option<(f64, f64)>,
}

impl Situation {
    pub fn new(task: Task, prior: PriorKind) -> Self {
        Self {
            task,
            general: false,
            prior,
            generator_top: None,
            damage: None,
        }
    }
}

/// DDRM's evaluations in whole-picture units: every step, or, when only the damage is
/// evaluated, the steps above σ_y at the damaged tiles' share and the rest in full.
fn ddrm_units(p: &samplers::DdrmParams, damage: Option<(f64, f64)>) -> f64 {
    let steps = p.steps as f64;
    let Some((share, sigma_y)) = damage.filter(|_| !p.whole_picture && p.eta_b == 1.0) else {
        return steps;
    };
    let hi = p.warm.or(p.sigma_max).unwrap_or(80.0);
    let lo = p.sigma_min.unwrap_or(0.002).min(hi);
    let mut grid = crate::schedule::karras(p.steps, lo, hi, p.rho);
    grid.push(0.0);
    let low = grid.iter().skip(1).filter(|s| **s < sigma_y).count() as f64;
    (steps - low) * share.clamp(0.0, 1.0) + low
}

/// What a sampler line costs: network evaluations per chain in evaluation units, or None when
/// it cannot be told before running (Langevin loops whose length depends on their fields, a
/// distilled generator asked for where it does not cover the start).
pub fn cost_units(spec: &SamplerSpec, at: &Situation) -> Option<f64> {
    let steps = |s: usize| s as f64;
    Some(match spec {
        SamplerSpec::Auto(p) => {
            let line = if at.general {
                auto::choose_general(p, at.prior, at.task, false)
            } else {
                auto::choose_for(p, at.prior, at.task)
            };
            return cost_units(&samplers::parse(line).ok()?, at);
        }
        SamplerSpec::NoiseSpaceLangevin(p) => {
            // As the sampler decides: the one-step generator when it covers the start.
            let start = p.warm.unwrap_or(f64::INFINITY);
            let one_call = p.generator != samplers::GeneratorChoice::Ode
                && !p.clamp
                && at
                    .generator_top
                    .is_some_and(|top| start <= top * (1.0 + 1e-9));
            let iterations = steps(p.warmup + p.steps + 1);
            if one_call {
                iterations * ONE_CALL_STEP_COST
            } else if p.generator == samplers::GeneratorChoice::Distilled {
                return None; // the sampler refuses it
            } else {
                // Heun steps: two evaluations each but the last.
                iterations * steps((2 * p.generator_steps).saturating_sub(1).max(1)) * ODE_NFE_COST
            }
        }
        SamplerSpec::Exact => 0.0,
        SamplerSpec::Ddrm(p) => ddrm_units(p, at.damage),
        SamplerSpec::DiffPir(p) => steps(p.steps),
        SamplerSpec::Eps(p) => steps(p.steps),
        SamplerSpec::Prior(p) => steps(p.steps),
        SamplerSpec::PiGdm(p) => steps(p.steps) * GRADIENT_COST,
        SamplerSpec::Dps(p) => steps(p.steps) * GRADIENT_COST,
        _ => return None,
    })
}

/// The restoration an operator of a recipe stands for (as [`crate::operators::Operator::task`]
/// says for a built one).
pub fn task_of(op: &crate::operators::OperatorSpec) -> Task {
    use crate::operators::OperatorSpec as O;
    match op {
        O::Identity => Task::Denoise,
        O::Mask(_) => Task::Inpaint,
        O::Downsample(_) => Task::SuperResolution,
        O::Blur { .. } => Task::Deblur,
        O::Grayscale => Task::Colourise,
        O::Matrix(_) | O::Abs(_) => Task::Other,
        O::Jpeg { .. } => Task::Dejpeg,
        O::Clip { .. } => Task::Declip,
        O::PhaseRetrieval { .. } => Task::PhaseRetrieval,
    }
}

/// Predicted seconds of a recipe's run, when its sampler's cost can be told; `prior` is its
/// catalog entry (None: a network of the reference photo prior's cost), `damage_share` the
/// share of the prior's tiles that hold a hole (inpainting), when known.
pub fn predict_recipe(
    speed: &Speed,
    recipe: &crate::recipe::Recipe,
    prior: Option<&super::catalog::PriorEntry>,
    damage_share: Option<f64>,
) -> Option<f64> {
    let (kind, cost) = match (&recipe.prior, prior) {
        (crate::priors::PriorSpec::Gmm(_), _) => (PriorKind::Mixture, 0.0),
        (_, Some(p)) => (
            p.kind(
                crate::priors::network::EpsOperator::of_spec(&recipe.operator),
                recipe.noise_sigma,
            ),
            p.cost,
        ),
        (_, None) => (PriorKind::Network, 1.0),
    };
    let at = Situation {
        task: task_of(&recipe.operator),
        general: !recipe.operator.is_linear() || !recipe.noise_model.is_gaussian(),
        prior: kind,
        generator_top: prior.and_then(|p| p.generator_top),
        damage: damage_share.map(|s| (s, recipe.noise_sigma)),
    };
    let units = cost_units(&recipe.sampler, &at)?;
    let [_, h, w] = recipe.shape();
    Some(speed.predict(units * cost, recipe.chains, h * w))
}

/// The speed correction learnt from finished runs: measured ÷ predicted, smoothed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    pub factor: f64,
    /// Whether any run on this machine has set it yet.
    pub measured: bool,
}

impl Default for Speed {
    fn default() -> Self {
        Self {
            factor: 1.0,
            measured: false,
        }
    }
}

impl Speed {
    /// Predicted seconds for `units` evaluations of `chains` chains of `pixels` pixels.
    pub fn predict(&self, units: f64, chains: usize, pixels: usize) -> f64 {
        units * chains as f64 * pixels as f64 * SECONDS_PER_NFE_PIXEL * self.factor
    }

    /// Learns from a finished run that took `seconds` where `predicted` was expected (at the
    /// current factor). Runs under a second say little and are ignored.
    pub fn learn(&mut self, predicted: f64, seconds: f64) {
        if !(predicted > 0.0 && seconds >= 1.0 && seconds.is_finite()) {
            return;
        }
        let ratio = seconds / predicted;
        self.factor = if self.measured {
            (self.factor * ratio.powf(0.5)).clamp(1e-4, 1e4)
        } else {
            (self.factor * ratio).clamp(1e-4, 1e4)
        };
        self.measured = true;
    }
}

/// "about 1 min 10 s" and friends.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=1 => "about a second".into(),
        2..=59 => format!("about {s} s"),
        60..=3599 => format!("about {} min {} s", s / 60, s % 60),
        _ => format!("about {} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_runs_are_predicted_and_the_factor_learns() {
        let speed = Speed::default();
        let ddrm = samplers::parse("Ddrm(steps: 50)").unwrap();
        let units = cost_units(
            &ddrm,
            &Situation::new(Task::SuperResolution, PriorKind::Network),
        )
        .unwrap();
        let t = speed.predict(units, 4, 256 * 256);
        assert!((t - 22.4).abs() < 1.5, "{t}");
        let pigdm = samplers::parse("PiGdm(steps: 50)").unwrap();
        let units = cost_units(&pigdm, &Situation::new(Task::Inpaint, PriorKind::Network)).unwrap();
        assert!((speed.predict(units, 4, 256 * 256) - 43.4).abs() < 3.0);
        let auto = samplers::parse("Auto(speed: Fast)").unwrap();
        assert!(cost_units(&auto, &Situation::new(Task::Deblur, PriorKind::Network)).is_some());
        // Noise-space Langevin: one call per step through a one-step generator that covers its
        // start, else the ODE's 2·8 − 1 evaluations per step, each with its pullback.
        let nsl = samplers::parse("NoiseSpaceLangevin(steps: 100, warm: 0.5)").unwrap();
        let patch = |top| Situation {
            generator_top: top,
            ..Situation::new(Task::Inpaint, PriorKind::Patch)
        };
        let units = |top| cost_units(&nsl, &patch(top));
        let ode = 301.0 * 15.0 * ODE_NFE_COST;
        assert_eq!(units(Some(2.0)), Some(301.0 * ONE_CALL_STEP_COST));
        assert_eq!(units(Some(f64::INFINITY)), Some(301.0 * ONE_CALL_STEP_COST));
        assert_eq!(units(Some(0.3)), Some(ode), "the ODE from σ 0.5");
        assert_eq!(units(None), Some(ode));
        let cold = samplers::parse("NoiseSpaceLangevin(steps: 100)").unwrap();
        let cold_units = cost_units(&cold, &patch(Some(2.0)));
        assert_eq!(cold_units, Some(ode));
        let forced =
            samplers::parse("NoiseSpaceLangevin(steps: 100, warm: 3.0, generator: Distilled)")
                .unwrap();
        assert_eq!(
            cost_units(&forced, &patch(Some(2.0))),
            None,
            "refused by the sampler"
        );
        // The measured ODE run: 21 iterations at 128² in 250 s (DDRM 50 there took 5.4 s, a
        // little faster per pixel than at 256², which the reference speed is).
        let short =
            samplers::parse("NoiseSpaceLangevin(steps: 10, warmup: 10, warm: 1.0, generator: Ode)")
                .unwrap();
        let t = speed.predict(
            cost_units(
                &short,
                &Situation::new(Task::SuperResolution, PriorKind::Patch),
            )
            .unwrap(),
            4,
            128 * 128,
        );
        assert!((t / 250.0 - 1.0).abs() < 0.6, "{t}");
        let units = cost_units(
            &ddrm,
            &Situation::new(Task::SuperResolution, PriorKind::Network),
        )
        .unwrap();
        let mut s = Speed::default();
        s.learn(10.0, 40.0);
        assert!((s.factor - 4.0).abs() < 1e-9 && s.measured);
        assert!(
            (s.predict(units, 4, 256 * 256) / speed.predict(units, 4, 256 * 256) - 4.0).abs()
                < 1e-9
        );
        assert_eq!(duration_text(75.0), "about 1 min 15 s");
        // Holes in a 2560×1440 photo (10% scratches and blots; docs/photo-table.md): `Auto`'s
        // 12 DDRM steps evaluated the 62% of the tiles that hold a hole above σ_y and the whole
        // picture at the last step, 229 s for 4 chains.
        let holes = samplers::parse("Ddrm(steps: 12, warm: 0.8, sigma_min: 0.02)").unwrap();
        let at = Situation {
            damage: Some((0.618, 0.02)),
            ..Situation::new(Task::Inpaint, PriorKind::Patch)
        };
        let units = cost_units(&holes, &at).unwrap();
        assert!((units - (11.0 * 0.618 + 1.0)).abs() < 1e-9, "{units}");
        let t = speed.predict(units, 4, 2560 * 1440);
        assert!((229.0 / 1.5..229.0 * 1.5).contains(&t), "{t}");
        let whole = cost_units(&holes, &Situation::new(Task::Inpaint, PriorKind::Patch));
        assert_eq!(whole, Some(12.0), "no damage map: every step in full");
    }

    #[test]
    fn a_wider_network_costs_what_the_photo_priors_measured() {
        let photo = |base| {
            let text = include_str!("../../models/photo/card.ron");
            let mut card = crate::priors::ModelCard::parse(text, std::path::Path::new("card"))
                .expect("the shipped card parses");
            card.unet = Some(crate::priors::unet::UNetConfig {
                image_channels: 3,
                base_channels: base,
                channel_mult: vec![1, 2, 4],
                ..Default::default()
            });
            card
        };
        // 32.8 s and 95.4 s for the same DDRM run (docs/photo-table.md).
        assert!((network_cost(&photo(16)) - 1.0).abs() < 0.01);
        assert!((network_cost(&photo(32)) - 95.4 / 32.8).abs() < 0.05);
    }
}
