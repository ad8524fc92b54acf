//! The model card: what a trained network expects (shape, architecture, σ range, data) and
//! what it is beside its base prior (an EPS fine-tune, a distilled generator). `card.ron` in a
//! model folder; read by [`super::network`] and the model list.

use super::unet::UNetConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The machine-readable half of a model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub name: String,
    /// (C, H, W) of the training images.
    pub shape: [usize; 3],
    /// True for a patch prior that restores images of any size (fully convolutional).
    #[serde(default)]
    pub any_size: bool,
    /// The network of a model trained here (None for an imported checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet: Option<UNetConfig>,
    #[serde(default = "default_sigma_min")]
    pub sigma_min: f64,
    #[serde(default = "default_sigma_max")]
    pub sigma_max: f64,
    /// Weights file, relative to the card.
    #[serde(default = "default_weights")]
    pub weights: String,
    /// Where the training data came from (files, split).
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub trained_steps: usize,
    /// Set for an EPS fine-tuned denoiser D(μ⋆, observation, σ) of a base prior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<EpsCard>,
    /// Set for a one-step generator Φ(z) = f(σ_max z, σ_max) distilled from a base prior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorCard>,
    /// How much to widen the chains' spread for each restoration and sampler line measured on
    /// held-out photos ([`crate::calibration`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<crate::calibration::SpreadCalibration>,
    /// An imported checkpoint: its network, parameterisation and provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointCard>,
}

/// Where an imported model came from and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointCard {
    pub format: CheckpointFormat,
    pub network: super::adm_layout::AdmConfig,
    pub parameterisation: super::parameterisation::Parameterisation,
    /// The file it was imported from, and that file's SHA-256.
    pub source: String,
    pub sha256: String,
    /// The licence the user stated at import ("" when none was).
    #[serde(default)]
    pub licence: String,
    /// The stored weights' precision (F32, F16, BF16): the file's own.
    pub precision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointFormat {
    GuidedDiffusion,
    ConsistencyModels,
    Diffusers { layers_per_block: usize },
}

/// The weights file of an imported model.
pub const CHECKPOINT_WEIGHTS: &str = "weights.safetensors";

/// What an EPS fine-tuned denoiser was trained for; `Eps` uses it only when the problem matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpsCard {
    /// Name of the prior it was fine-tuned from (the folder `NAME-eps` sits beside `NAME`).
    pub base: String,
    pub operators: Vec<EpsOperator>,
    /// Range of σ_y seen in training.
    pub sigma_y: (f64, f64),
}

impl EpsCard {
    /// True when σ_y lies within 1.5× of the range it was trained on.
    pub fn fits_sigma_y(&self, sigma_y: f64) -> bool {
        let (lo, hi) = self.sigma_y;
        sigma_y >= lo / 1.5 && sigma_y <= hi * 1.5
    }

    /// True when it was trained for this operator family and σ_y: what `Eps` and `Auto` will
    /// decide once the operator is built ([`EpsDenoiser::matches`]).
    pub fn covers(&self, family: EpsOperator, sigma_y: f64) -> bool {
        self.operators.contains(&family) && self.fits_sigma_y(sigma_y)
    }
}

/// Operator families an EPS fine-tune covers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum EpsOperator {
    /// Any pixel mask (random pixels, boxes, brush strokes).
    Mask,
    /// Block-average super-resolution by this factor.
    Downsample(usize),
}

impl EpsOperator {
    /// The family of an operator as a recipe names it (None: no fine-tune covers it).
    pub fn of_spec(op: &crate::operators::OperatorSpec) -> Option<Self> {
        use crate::operators::OperatorSpec as O;
        match op {
            O::Mask(_) => Some(Self::Mask),
            O::Downsample(f) => Some(Self::Downsample(*f)),
            _ => None,
        }
    }

    pub fn matches(&self, op: &dyn crate::operators::Operator) -> bool {
        let name = op.name();
        match self {
            EpsOperator::Mask => name.starts_with("Mask("),
            EpsOperator::Downsample(f) => name == format!("Downsample({f})"),
        }
    }
}

/// How a one-step generator was distilled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorCard {
    pub base: String,
    /// "consistency distillation" and its Karras grid size.
    pub method: String,
    pub grid: usize,
    /// The highest σ it was distilled for, when below the prior's σ_max: a warm generator that
    /// serves only starts f(x_c + σz, σ) with σ ≤ top, not Φ(z) from pure noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<f64>,
}

fn default_sigma_min() -> f64 {
    0.002
}
fn default_sigma_max() -> f64 {
    80.0
}
fn default_weights() -> String {
    "model.bpk".into()
}

pub const CARD_FILE: &str = "card.ron";

impl ModelCard {
    /// What the model is when it is not a prior of its own: an EPS fine-tune or a distilled
    /// generator of a base prior (they sit beside it as `NAME-eps/`, `NAME-cm/`).
    pub fn companion_of(&self) -> Option<String> {
        if let Some(e) = &self.eps {
            return Some(format!("the EPS fine-tune of '{}'", e.base));
        }
        self.generator.as_ref().map(|g| match g.top {
            Some(top) => format!(
                "the one-step generator distilled from '{}' for warm starts (σ ≤ {top})",
                g.base
            ),
            None => format!("the one-step generator distilled from '{}'", g.base),
        })
    }

    /// The trained network's architecture; an imported checkpoint has none (it is run by
    /// [`super::imported::ImportedPrior`]).
    pub fn trained_unet(&self) -> Result<&UNetConfig> {
        self.unet.as_ref().ok_or_else(|| {
            Error::invalid(
                format!("model '{}'", self.name),
                "is an imported checkpoint, not a network trained by this program",
            )
        })
    }

    /// Multiply-adds × 2 per pixel of one network call (on a 64×64 picture, or the imported
    /// network's own size).
    pub fn flops_per_pixel(&self) -> f64 {
        match (&self.unet, &self.checkpoint) {
            (Some(u), _) => u.flops(64, 64) / 4096.0,
            (None, Some(c)) => {
                let s = c.network.image_size;
                c.network.flops(s, s) / (s * s) as f64
            }
            (None, None) => 0.0,
        }
    }

    pub fn to_ron(&self) -> Result<String> {
        crate::ron_format::to_string(self).map_err(|e| Error::invalid("model card", e))
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let card: ModelCard = crate::ron_format::options()
            .from_str(text)
            .map_err(|e| Error::file(path, format!("not a valid model card: {e}")))?;
        if let Some(c) = &card.checkpoint {
            if card.unet.is_some() {
                return Err(Error::file(
                    path,
                    "a card describes a trained network (unet) or an imported checkpoint, not both",
                ));
            }
            c.network.check().map_err(|e| Error::file(path, e))?;
            if card.shape
                != [
                    c.network.in_channels,
                    c.network.image_size,
                    c.network.image_size,
                ]
            {
                return Err(Error::file(
                    path,
                    format!(
                        "shape {:?} does not match the checkpoint's network",
                        card.shape
                    ),
                ));
            }
            return Ok(card);
        }
        let Some(u) = &card.unet else {
            return Err(Error::file(
                path,
                "the card describes no network (unet or checkpoint)",
            ));
        };
        if card.shape.contains(&0) || u.image_channels != card.shape[0] {
            return Err(Error::file(
                path,
                format!(
                    "shape {:?} does not match the network's {} image channels",
                    card.shape, u.image_channels
                ),
            ));
        }
        if u.channel_mult.is_empty() || u.base_channels == 0 || u.emb_dim == 0 {
            return Err(Error::file(
                path,
                "the network needs channel_mult, base_channels and emb_dim",
            ));
        }
        if !(card.sigma_min > 0.0 && card.sigma_max > card.sigma_min) {
            return Err(Error::file(
                path,
                "sigma_min/sigma_max must satisfy 0 < min < max",
            ));
        }
        Ok(card)
    }
}
