//! Priors: one denoiser interface D(x, σ) ≈ E[x_0 | x_σ = x], with score (D − x)/σ² (Tweedie).

pub mod adm;
pub mod adm_layout;
pub mod card;
pub mod gmm;
pub mod gmm_file;
pub mod imported;
pub mod network;
pub mod parameterisation;
pub mod tiles;
pub mod unet;
pub mod unet_cpu;

pub use gmm::{Gmm, GmmDenoiser};
pub use gmm_file::GmmFile;
pub use network::{EpsDenoiser, Generator, ModelCard, NetworkPrior};
pub use tiles::Tiling;

use burn::tensor::Tensor;

/// A denoiser in the EDM / variance-exploding convention: x_σ = x_0 + σ ε.
pub trait Denoiser: Send + Sync {
    /// D(x, σ) for x of shape [B, C, H, W]. Built from burn tensor ops only, so it is
    /// differentiable when x carries autodiff.
    fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4>;
    /// D(x, σ) where only the pixels of `needed` (an H×W map, true: needed) must be right; the
    /// others may hold anything, and the caller replaces them. A prior run in tiles evaluates
    /// only the tiles that hold a needed pixel, so a few holes in a large photo cost their
    /// tiles, not the picture's; every other prior evaluates the whole picture.
    fn denoise_where(&self, x: Tensor<4>, sigma: f64, _needed: &[bool]) -> Tensor<4> {
        self.denoise(x, sigma)
    }
    /// The share of the network's work that [`Denoiser::denoise_where`] does on an H×W picture
    /// with this `needed` map (1 when it evaluates everything).
    fn share_of_work(&self, _h: usize, _w: usize, _needed: &[bool]) -> f64 {
        1.0
    }
    /// (C, H, W) the prior is defined on.
    fn shape(&self) -> [usize; 3];
    /// For messages and summaries.
    fn describe(&self) -> String;
    /// Default noise range for samplers: (σ_min, σ_max).
    fn sigma_range(&self) -> (f64, f64) {
        (0.002, 80.0)
    }
    /// Whether it is a patch prior that restores pictures of any size (in tiles).
    fn any_size(&self) -> bool {
        false
    }
    /// The scale of the data: |x| stays within a few times this (1 for images in [-1, 1]).
    /// Estimates far beyond it mean a sampler diverged.
    fn data_bound(&self) -> f64 {
        1.0
    }
    /// The exact mixture when this prior is a Gaussian mixture (enables `Exact` and exact checks).
    fn gmm(&self) -> Option<&Gmm> {
        None
    }
    /// EPS's fine-tuned denoiser for this operator and σ_y, when one was trained from this prior.
    fn eps_denoiser(
        &self,
        _op: &dyn crate::operators::Operator,
        _sigma_y: f64,
    ) -> Option<&EpsDenoiser> {
        None
    }
    /// D(x, σ) with its pullback v ↦ (∂D/∂x)ᵀ v, when the prior has a faster way than burn's
    /// autodiff (a network's CPU path); None: the samplers use autodiff.
    fn denoise_vjp(&self, _x: &Tensor<4>, _sigma: f64) -> Option<(Tensor<4>, Pullback)> {
        None
    }
    /// The spread calibration measured for this prior ([`crate::calibration`]; its card's).
    fn spread_calibration(&self) -> &[crate::calibration::SpreadCalibration] {
        &[]
    }
    /// A distilled one-step generator Φ(z), when one was trained from this prior.
    fn generator(&self) -> Option<&Generator> {
        None
    }
    /// A consistency model alone: a one-step generator, not a denoiser (only samplers that
    /// sample through its generator can use it).
    fn generator_only(&self) -> bool {
        false
    }
    /// The imported checkpoint behind this prior, if it is one (its checked evaluation).
    fn imported(&self) -> Option<&imported::ImportedPrior> {
        None
    }
}

/// Loads any model folder as a prior: one trained here (with its companions) or an imported
/// checkpoint (with its class, when class-conditional), for pictures of `shape`.
pub fn load_model(
    path: &std::path::Path,
    shape: Option<[usize; 3]>,
    class: Option<usize>,
    device: &burn::tensor::Device,
) -> crate::error::Result<std::sync::Arc<dyn Denoiser>> {
    let (card_path, dir) = network::locate(path)?;
    let card = ModelCard::parse(&crate::files::read_text(&card_path)?, &card_path)?;
    if card.checkpoint.is_some() {
        let prior = imported::ImportedPrior::load(&dir, card, shape, class, device)?;
        return Ok(std::sync::Arc::new(prior));
    }
    if let Some(k) = class {
        return Err(crate::error::Error::invalid(
            "class",
            format!(
                "model '{}' is not class-conditional (class {k} given)",
                card.name
            ),
        ));
    }
    Ok(std::sync::Arc::new(NetworkPrior::load(
        path, shape, device,
    )?))
}

/// The pullback of a denoiser evaluation: v ↦ (∂D/∂x)ᵀ v.
pub type Pullback = Box<dyn FnOnce(Tensor<4>) -> crate::error::Result<Tensor<4>> + Send>;

/// ∇ log p_σ(x) = (D(x, σ) − x)/σ².
pub fn score(prior: &dyn Denoiser, x: Tensor<4>, sigma: f64) -> Tensor<4> {
    (prior.denoise(x.clone(), sigma) - x).div_scalar(sigma * sigma)
}

/// The prior as a recipe names it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PriorSpec {
    /// A Gaussian-mixture RON file.
    Gmm(String),
    /// A learned network (burnpack file with a model card).
    Model(String),
}
