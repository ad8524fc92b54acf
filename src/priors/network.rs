//! A learned prior: an EDM-preconditioned U-Net loaded from a burnpack file and its model card.
//!
//! A model lives in a folder: `card.ron` (what the network expects, machine-readable),
//! `model.bpk` (EMA weights), `README.md` (the human card). `Model("models/fashion-mnist")` in a
//! recipe names the folder (or the `.bpk` file inside it).

use super::Denoiser;
use super::unet::{EdmUNet, UNetConfig};
use crate::error::{Error, Result};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The machine-readable half of a model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    /// (C, H, W) of the training images.
    pub shape: [usize; 3],
    /// True for a patch prior that restores images of any size (fully convolutional).
    #[serde(default)]
    pub any_size: bool,
    pub unet: UNetConfig,
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
    pub fn to_ron(&self) -> Result<String> {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(|e| Error::invalid("model card", e.to_string()))
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let card: ModelCard = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| Error::file(path, format!("not a valid model card: {e}")))?;
        let u = &card.unet;
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

/// Maps the names a recipe may use to a model folder: the folder itself, a file inside it, or
/// the contract's `models/NAME.mpk` form (resolved to the folder `models/NAME/`).
pub fn resolve(path: &Path) -> PathBuf {
    if path.exists() {
        return path.to_path_buf();
    }
    let stem = path.with_extension("");
    if stem.is_dir() {
        return stem;
    }
    path.to_path_buf()
}

/// Resolves `path` (a model folder, its card or its weights) to (card path, folder).
pub fn locate(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        return Err(Error::file(
            path,
            "cannot read model: no such file or folder",
        ));
    };
    let card = dir.join(CARD_FILE);
    if !card.is_file() {
        return Err(Error::file(
            path,
            format!(
                "cannot read model: no {CARD_FILE} beside it (the model card says what the network expects)"
            ),
        ));
    }
    Ok((card, dir))
}

/// The denoiser of a trained network.
pub struct NetworkPrior {
    pub card: ModelCard,
    pub model: EdmUNet,
    shape: [usize; 3],
    path: PathBuf,
}

impl NetworkPrior {
    /// Loads a model folder for images of `shape` (checked against the card).
    pub fn load(path: &Path, shape: Option<[usize; 3]>, device: &Device) -> Result<Self> {
        let (card_path, dir) = locate(path)?;
        let text = std::fs::read_to_string(&card_path)
            .map_err(|e| Error::file(&card_path, format!("cannot read: {e}")))?;
        let card = ModelCard::parse(&text, &card_path)?;
        let weights = dir.join(&card.weights);
        let record = crate::backend::quiet_stderr(|| ModuleRecord::load(&weights))
            .map_err(|e| Error::file(&weights, format!("cannot read weights: {e}")))?;
        let model = EdmUNet::new(&card.unet, device)
            .try_load_record(record)
            .map_err(|e| {
                Error::file(
                    &weights,
                    format!("weights do not fit the card's network: {e}"),
                )
            })?;
        Self::from_parts(card, model, shape, &dir)
    }

    /// Loads from bytes (the model embedded in the binary for the app's default).
    pub fn from_bytes(
        card_text: &str,
        weights: &'static [u8],
        shape: Option<[usize; 3]>,
        device: &Device,
    ) -> Result<Self> {
        let name = Path::new("<embedded model>");
        let card = ModelCard::parse(card_text, name)?;
        let record = crate::backend::quiet_stderr(|| {
            ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights.to_vec()))
        })
        .map_err(|e| Error::file(name, format!("cannot read weights: {e}")))?;
        let model = EdmUNet::new(&card.unet, device)
            .try_load_record(record)
            .map_err(|e| Error::file(name, format!("weights do not fit the card: {e}")))?;
        Self::from_parts(card, model, shape, name)
    }

    pub fn from_parts(
        card: ModelCard,
        model: EdmUNet,
        shape: Option<[usize; 3]>,
        path: &Path,
    ) -> Result<Self> {
        let shape = shape.unwrap_or(card.shape);
        let fits = if card.any_size {
            shape[0] == card.shape[0]
        } else {
            shape == card.shape
        };
        if !fits {
            let expect = if card.any_size {
                format!("{} channel(s), any size", card.shape[0])
            } else {
                format!("{:?}", card.shape)
            };
            return Err(Error::file(
                path,
                format!(
                    "model '{}' expects images of shape {expect}, the recipe has {shape:?}",
                    card.name
                ),
            ));
        }
        Ok(Self {
            card,
            model,
            shape,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Denoiser for NetworkPrior {
    fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        let [b, _, _, _] = x.dims();
        let s = Tensor::<1>::full([b], sigma, &x.device());
        self.model.denoise(x, None, s)
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn describe(&self) -> String {
        format!(
            "network '{}' ({} parameters, trained {} steps)",
            self.card.name,
            self.model.num_params(),
            self.card.trained_steps
        )
    }

    fn sigma_range(&self) -> (f64, f64) {
        (self.card.sigma_min, self.card.sigma_max)
    }
}
