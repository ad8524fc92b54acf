//! Training of network priors (EDM loss, checkpoints) — data sets first.

pub mod config;
pub mod data;
pub mod step;
pub mod tasks;
pub mod trainer;

pub use trainer::{TrainConfig, train};
