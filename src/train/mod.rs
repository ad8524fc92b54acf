//! Training of network priors (EDM loss, checkpoints) — data sets first.

pub mod data;
