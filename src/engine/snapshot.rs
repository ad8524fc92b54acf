//! What the screen gets from the engine after a step.

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
    pub steps_per_second: f64,
    /// Up to `shown` chains of the current state x_t, [shown, C, H, W] flattened.
    pub x: Vec<f32>,
    /// The same chains' denoised estimates x̂0.
    pub x0_hat: Vec<f32>,
    /// Mean and variance over all chains of x̂0, [C, H, W] flattened.
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    /// ‖y − A(x̂0)‖/(σ_y √m) per chain.
    pub residuals: Vec<f64>,
}
