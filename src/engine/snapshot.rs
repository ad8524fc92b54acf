//! What the screen gets from the engine after a step.

use crate::uncertainty::{Pca, PixelStats};
use std::sync::Arc;

/// The state of a run as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Paused,
    Done,
    /// Cancelled by the user.
    Stopped,
    /// The run ended with an error (bad input, non-finite chains, …): the message to show.
    Failed(String),
}

/// One frame for the screen: chains, their running statistics and figures.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Which run this frame belongs to (frames of older runs are never shown).
    pub run_id: u64,
    pub status: Status,
    /// (C, H, W) of one chain.
    pub shape: [usize; 3],
    pub chains: usize,
    pub step: usize,
    pub total_steps: usize,
    pub sigma: f64,
    pub nfe: usize,
    /// Steps per second of sampling (time paused or waiting for commands not counted).
    pub steps_per_second: f64,
    /// Seconds spent sampling so far (paused time not counted).
    pub busy_seconds: f64,
    /// Up to `shown` chains of the current state x_t, [shown, C, H, W] flattened.
    pub x: Vec<f32>,
    /// The same chains' denoised estimates x̂0.
    pub x0_hat: Vec<f32>,
    /// Mean and variance over all chains of x̂0, [C, H, W] flattened.
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    /// ‖y − A(x̂0)‖/(σ_y √m) per chain.
    pub residuals: Vec<f64>,
    /// The inputs of the run, shared between frames (never copied per frame).
    pub inputs: Option<Arc<RunInputs>>,
    /// PSNR (dB, data range 2) of the posterior mean against the truth, when it is known.
    pub psnr: Option<f64>,
    /// Every step's figures so far (shared, never copied per frame), so plots keep every
    /// step even when frames are dropped (latest wins).
    pub trace: Arc<Vec<TracePoint>>,
    /// How the chains' estimates vary (principal components, intervals, calibration), from
    /// the engine now and then; shared between frames until the next one.
    pub uncertainty: Option<Arc<UncertaintyFrame>>,
}

/// Principal components and per-pixel intervals of all chains' x̂0 at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct UncertaintyFrame {
    pub step: usize,
    /// The mean the components are about, and the variance over chains, [C, H, W].
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    pub pca: Pca,
    pub stats: PixelStats,
    /// Seconds it took the engine to compute.
    pub seconds: f64,
}

/// One step's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    pub step: usize,
    pub sigma: f64,
    /// ‖y − A(x̂0)‖/(σ_y √m) of the first few chains.
    pub residuals: Vec<f64>,
    pub psnr: Option<f64>,
}

/// What the run was given, in the image space of x for display.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInputs {
    /// [C, H, W] flattened.
    pub truth: Option<Vec<f32>>,
    /// y shown in x's space: y itself when A keeps the shape, else Aᵀy / Aᵀ1 (e.g. a low-res
    /// image blown up, a grey image in every channel).
    pub y_view: Vec<f32>,
    /// Per pixel, whether A sees it (Aᵀ1 > 0): false where an inpainting mask removed pixels.
    pub seen: Vec<bool>,
    pub prior: String,
    pub operator: String,
    pub sampler: String,
    /// What the sampler chose where the recipe left it a choice (EPS mode, CPS generator, ζ).
    pub detail: Option<String>,
    /// Whether the sampler follows a falling noise level (else σ means nothing to plot).
    pub anneals: bool,
    /// A classical restoration shown as the mean until the first step (a network run's first
    /// answer), and what it is ("bicubic", …).
    pub first_answer: Option<(Vec<f32>, &'static str)>,
    /// The prior card's spread calibration for this restoration and sampler, when measured.
    pub spread_calibration: Option<crate::calibration::SpreadCalibration>,
}
