//! What the lab remembers between launches: the scene as edited and how it is shown.

use crate::lab::LabScene;
use crate::lab::examples;
use crate::lab::picture::{Bounds, Density};

/// What the lab remembers between launches: the scene as edited and how it is shown.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LabPrefs {
    pub scene: LabScene,
    pub bounds: Bounds,
    pub density: Density,
    /// Densities noised at the shown σ (p_σ), else clean.
    pub noised: bool,
    pub arrows: Arrows,
    /// Particles as denoised estimates x̂0 (else the noisy states x_t).
    pub show_x0: bool,
    pub trails: bool,
    /// Exact posterior samples as a faint cloud.
    pub reference: bool,
    /// The sampler as a recipe writes it.
    pub sampler: String,
    pub particles: usize,
    pub seed: u64,
    /// A whole run replays in this many seconds.
    pub replay_seconds: f32,
    /// Re-run when an edit of the scene is finished.
    pub rerun_on_edit: bool,
    /// σ of the fields when no annealed run is shown.
    pub sigma: f64,
}

/// Which arrows are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Arrows {
    pub prior: bool,
    pub posterior: bool,
    pub exact_guidance: bool,
    /// The chosen sampler's own guidance arrow, when it has one.
    pub sampler: bool,
}

impl Default for LabPrefs {
    fn default() -> Self {
        Self {
            scene: examples::bimodal(),
            bounds: Bounds::default(),
            density: Density::Posterior,
            noised: true,
            arrows: Arrows {
                prior: false,
                posterior: false,
                exact_guidance: true,
                sampler: true,
            },
            show_x0: false,
            trails: false,
            reference: true,
            sampler: "Dps(steps: 200)".into(),
            particles: 1000,
            seed: 0,
            replay_seconds: 5.0,
            rerun_on_edit: true,
            sigma: 0.5,
        }
    }
}
