//! A sampler run in the lab: the same samplers as every image run, on the scene's problem, with
//! every step's particles recorded and their accuracy against exact posterior samples measured
//! as they go (sliced Wasserstein distance and mode-weight error, each beside its spread between
//! exact sets of the same size, as the test beds judge samplers).

use super::scene::LabScene;
use crate::error::{Error, Result};
use crate::metrics;
use crate::priors::Gmm;
use crate::problem::Problem;
use crate::samplers::{self, ChainState, Sampler, SamplerSpec};
use crate::tensor;
use crate::testbeds::Floor;
use burn::tensor::Device;

/// The most particles a lab run takes.
pub const MAX_PARTICLES: usize = 10_000;
/// The most steps a lab run records (every step is kept for scrubbing).
pub const MAX_STEPS: usize = 5_000;
/// Random directions of the sliced Wasserstein distance (fixed for a run, so the curve is smooth).
const DIRECTIONS: usize = 64;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub scene: LabScene,
    pub sampler: SamplerSpec,
    pub particles: usize,
    pub seed: u64,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub step: usize,
    pub sigma: f64,
    pub nfe: usize,
    /// The particles x_t and their denoised estimates x̂0.
    pub x: Vec<[f32; 2]>,
    pub x0: Vec<[f32; 2]>,
    /// Accuracy of x̂0 against exact posterior samples.
    pub sw: f64,
    pub mode_error: f64,
}

/// Fixed before the first step: how far apart exact sets of this size are.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub total_steps: usize,
    /// SW and mode-weight error between exact sets of the run's size: mean and spread.
    pub sw_floor: (f64, f64),
    pub mode_floor: (f64, f64),
    /// What the sampler chose where the recipe left it a choice.
    pub detail: Option<String>,
}

/// Measures a particle set against exact posterior samples with fixed directions.
pub struct Accuracy {
    posterior: Gmm,
    dirs: Vec<[f64; 2]>,
    /// The reference projected on each direction, sorted.
    reference: Vec<Vec<f64>>,
}

impl Accuracy {
    pub fn new(posterior: Gmm, reference_size: usize, seed: u64) -> Self {
        let mut rng = tensor::rng(seed);
        let reference = posterior.sample(reference_size, &mut rng).0;
        let dirs: Vec<[f64; 2]> = (0..DIRECTIONS)
            .map(|k| {
                let t = std::f64::consts::PI * (k as f64 + 0.5) / DIRECTIONS as f64;
                [t.cos(), t.sin()]
            })
            .collect();
        let reference = dirs.iter().map(|d| project_sorted(&reference, d)).collect();
        Self {
            posterior,
            dirs,
            reference,
        }
    }

    /// Sliced W1 (mean over the directions, evenly spread over the half circle).
    pub fn sw(&self, points: &[Vec<f64>]) -> f64 {
        if points.is_empty() {
            return f64::NAN;
        }
        let total: f64 = self
            .dirs
            .iter()
            .zip(&self.reference)
            .map(|(d, r)| metrics::wasserstein_1d_sorted(&project_sorted(points, d), r))
            .sum();
        total / self.dirs.len() as f64
    }

    pub fn mode_error(&self, points: &[Vec<f64>]) -> f64 {
        metrics::mode_weight_error(&self.posterior, points)
    }

    /// Mean and standard deviation of (SW, mode error) between `reps` exact sets of size n and
    /// the reference.
    pub fn floor(&self, n: usize, reps: usize, seed: u64) -> ((f64, f64), (f64, f64)) {
        let mut rng = tensor::rng(seed);
        let (mut sws, mut modes) = (vec![], vec![]);
        for _ in 0..reps {
            let s = self.posterior.sample(n, &mut rng).0;
            sws.push(self.sw(&s));
            modes.push(self.mode_error(&s));
        }
        let stats = |values| {
            let f = Floor { values };
            (f.mean(), f.std())
        };
        (stats(sws), stats(modes))
    }
}

fn project_sorted(points: &[Vec<f64>], d: &[f64; 2]) -> Vec<f64> {
    let mut p: Vec<f64> = points.iter().map(|x| x[0] * d[0] + x[1] * d[1]).collect();
    p.sort_by(f64::total_cmp);
    p
}

/// A run in progress, driven one step at a time.
pub struct LabRun {
    problem: Problem,
    sampler: Box<dyn Sampler>,
    accuracy: Accuracy,
}

impl LabRun {
    /// Builds the problem and the sampler and records the starting state (frame 0).
    pub fn start(req: &RunRequest, device: &Device) -> Result<(Self, RunInfo, Frame)> {
        if req.particles == 0 || req.particles > MAX_PARTICLES {
            return Err(Error::invalid(
                "particles",
                format!(
                    "must be between 1 and {MAX_PARTICLES}, got {}",
                    req.particles
                ),
            ));
        }
        let problem = req.scene.problem(device)?;
        let sampler = samplers::build(&req.sampler, &problem, req.particles, req.seed)?;
        let total_steps = sampler.state().total_steps;
        if total_steps > MAX_STEPS {
            return Err(Error::invalid(
                "steps",
                format!(
                    "the lab records every step: at most {MAX_STEPS}, this run takes {total_steps}"
                ),
            ));
        }
        let posterior = req.scene.scene()?.posterior().clone();
        let accuracy = Accuracy::new(posterior, (4 * req.particles).max(4000), req.seed ^ 0x5eed);
        let (sw_floor, mode_floor) = accuracy.floor(req.particles, 20, req.seed ^ 0xf100);
        let info = RunInfo {
            total_steps,
            sw_floor,
            mode_floor,
            detail: sampler.detail(),
        };
        let run = Self {
            problem,
            sampler,
            accuracy,
        };
        let first = run.frame()?;
        Ok((run, info, first))
    }

    pub fn is_done(&self) -> bool {
        self.sampler.is_done()
    }

    /// One step of every particle (non-finite or diverged chains end the run with a message).
    pub fn step(&mut self) -> Result<Frame> {
        self.sampler.step(&self.problem)?;
        samplers::check_state(self.sampler.name(), self.sampler.state(), &self.problem)?;
        self.frame()
    }

    /// The sampler's output once done (what `samples.npy` would hold).
    pub fn samples(&self) -> Result<Vec<[f32; 2]>> {
        Ok(pairs(&tensor::to_vec(&self.sampler.samples())?))
    }

    fn frame(&self) -> Result<Frame> {
        let s: &ChainState = self.sampler.state();
        let x = pairs(&tensor::to_vec(&s.x)?);
        // The last frame shows what the run returns (some samplers end with a final denoise).
        let x0 = if self.sampler.is_done() {
            self.samples()?
        } else {
            pairs(&tensor::to_vec(&s.x0_hat)?)
        };
        let rows: Vec<Vec<f64>> = x0
            .iter()
            .map(|p| vec![f64::from(p[0]), f64::from(p[1])])
            .collect();
        Ok(Frame {
            step: s.step,
            sigma: s.sigma,
            nfe: s.nfe,
            sw: self.accuracy.sw(&rows),
            mode_error: self.accuracy.mode_error(&rows),
            x,
            x0,
        })
    }
}

fn pairs(v: &[f32]) -> Vec<[f32; 2]> {
    v.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}
