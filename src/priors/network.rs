//! A learned prior: an EDM-preconditioned U-Net loaded from a burnpack file and its model card.
//!
//! A model lives in a folder: `card.ron` (what the network expects, machine-readable),
//! `model.bpk` (EMA weights), `README.md` (the human card). `Model("models/fashion-mnist")` in a
//! recipe names the folder (or the `.bpk` file inside it).

use super::Denoiser;
pub use super::card::{CARD_FILE, EpsCard, EpsOperator, GeneratorCard, ModelCard};
use super::tiles::Tiling;
use super::unet::EdmUNet;
use crate::error::{Error, Result};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use std::path::{Path, PathBuf};

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

/// The denoiser of a trained network, with the variants trained from it that were found beside
/// it (`NAME-eps/`, `NAME-cm/`).
pub struct NetworkPrior {
    pub card: ModelCard,
    pub model: EdmUNet,
    shape: [usize; 3],
    path: PathBuf,
    eps: Option<EpsDenoiser>,
    generator: Option<Generator>,
    /// Overlapping tiles for pictures larger than one tile (any-size priors only).
    tiling: Option<Tiling>,
}

/// EPS's fine-tuned denoiser: the prior's U-Net with the observation image as an extra input.
pub struct EpsDenoiser {
    pub card: ModelCard,
    pub model: EdmUNet,
    pub path: PathBuf,
    /// The prior's tiles: a patch-trained network sees large pictures tile by tile, as it was
    /// trained (whole, GroupNorm's statistics over a far larger picture shift its output).
    pub tiling: Option<Tiling>,
}

impl EpsDenoiser {
    /// True when it was trained for this operator family and σ_y (within 1.5x of its range).
    pub fn matches(&self, op: &dyn crate::operators::Operator, sigma_y: f64) -> bool {
        let Some(eps) = &self.card.eps else {
            return false;
        };
        eps.operators.iter().any(|o| o.matches(op)) && eps.fits_sigma_y(sigma_y)
    }

    /// D(μ⋆, observation, σ) for a batch, in tiles when the picture is larger than one.
    pub fn denoise(&self, mu: Tensor<4>, observation: Tensor<4>, sigma: f64) -> Tensor<4> {
        let whole = |mu: Tensor<4>, obs: Tensor<4>| {
            let b = mu.dims()[0];
            let s = Tensor::<1>::full([b], sigma, &mu.device());
            self.model.denoise(mu, Some(obs), s)
        };
        let [_, c, h, w] = mu.dims();
        let plan = self.tiling.and_then(|t| t.plan(h, w));
        match plan.filter(|_| !mu.is_autodiff()) {
            Some(plan) => {
                let k = observation.dims()[1];
                let both = Tensor::cat(vec![mu.clone(), observation.clone()], 1);
                let split = |t: Tensor<4>| {
                    let [n, _, th, tw] = t.dims();
                    let m = t.clone().slice([0..n, 0..c, 0..th, 0..tw]);
                    whole(m, t.slice([0..n, c..c + k, 0..th, 0..tw]))
                };
                // As for the prior: a failed read-back reports itself through the whole call.
                plan.denoise_channels(both, c, split)
                    .unwrap_or_else(|_| whole(mu, observation))
            }
            None => whole(mu, observation),
        }
    }
}

/// A distilled one-step generator: x = f(σ_max z, σ_max), a consistency model's single call.
pub struct Generator {
    pub card: ModelCard,
    pub net: GeneratorNet,
    pub path: PathBuf,
}

/// The network of a generator: distilled here (`NAME-cm`), or an imported consistency model.
pub enum GeneratorNet {
    Trained(Box<EdmUNet>),
    Imported(std::sync::Arc<super::imported::ImportedNet>),
}

impl Generator {
    /// An imported consistency model as a generator.
    pub fn imported(net: std::sync::Arc<super::imported::ImportedNet>) -> Self {
        Self {
            card: net.card.clone(),
            path: net.path.clone(),
            net: GeneratorNet::Imported(net),
        }
    }

    /// f(x, σ) with its pullback on the CPU path (a generator distilled here), else None.
    pub fn denoise_vjp(&self, x: &Tensor<4>, sigma: f64) -> Option<(Tensor<4>, super::Pullback)> {
        match &self.net {
            GeneratorNet::Trained(m) => m.denoise_vjp(x, None, sigma),
            GeneratorNet::Imported(_) => None,
        }
    }

    /// Φ(z) for z ~ N(0, I) of shape [B, C, H, W]; differentiable in z.
    pub fn generate(&self, z: Tensor<4>) -> Tensor<4> {
        let hi = self.card.sigma_max;
        self.consistency(z.mul_scalar(hi), hi)
    }

    /// The highest σ it maps to data: the prior's σ_max unless it was distilled only below.
    pub fn top(&self) -> f64 {
        self.card
            .generator
            .as_ref()
            .and_then(|g| g.top)
            .map_or(self.card.sigma_max, |t| t.min(self.card.sigma_max))
    }

    /// True when it maps pure noise to data (distilled up to the prior's σ_max).
    pub fn cold(&self) -> bool {
        self.top() >= self.card.sigma_max
    }

    /// The consistency function f(x, σ): the end of the probability-flow ODE trajectory through
    /// x at level σ, in one call (f(x, σ_min) = x by construction).
    pub fn consistency(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        match &self.net {
            GeneratorNet::Trained(m) => {
                let b = x.dims()[0];
                let s = Tensor::<1>::full([b], sigma, &x.device());
                m.denoise(x, None, s)
            }
            GeneratorNet::Imported(n) => n.denoise(x, sigma),
        }
    }
}

/// Reads a model folder's card and weights.
pub fn read_model(path: &Path, device: &Device) -> Result<(ModelCard, EdmUNet, PathBuf)> {
    let (card_path, dir) = locate(path)?;
    let text = crate::files::read_text(&card_path)?;
    let card = ModelCard::parse(&text, &card_path)?;
    let weights = dir.join(&card.weights);
    // Only a regular file (a FIFO named as weights would block the loader).
    if !weights.is_file() {
        return Err(Error::file(
            &weights,
            "is not a regular file (the model's weights)",
        ));
    }
    let record = crate::backend::quiet_stderr(|| ModuleRecord::load(&weights))
        .map_err(|e| Error::file(&weights, format!("cannot read weights: {e}")))?;
    let model = EdmUNet::new(card.trained_unet()?, device)
        .try_load_record(record)
        .map_err(|e| {
            Error::file(
                &weights,
                format!("weights do not fit the card's network: {e}"),
            )
        })?;
    Ok((card, model, dir))
}

/// The folder `NAME-SUFFIX` beside a model folder, when it holds a card.
pub(super) fn sibling(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let path = dir.with_file_name(format!("{name}-{suffix}"));
    path.join(CARD_FILE).is_file().then_some(path)
}

impl NetworkPrior {
    /// Loads a model folder for images of `shape` (checked against the card), with its EPS
    /// fine-tune and its one-step generator when they sit beside it.
    pub fn load(path: &Path, shape: Option<[usize; 3]>, device: &Device) -> Result<Self> {
        let (card, model, dir) = read_model(path, device)?;
        if let Some(role) = card.companion_of() {
            return Err(Error::file(
                &dir,
                format!(
                    "'{}' is {role}, not a prior: name the base model's folder",
                    card.name
                ),
            ));
        }
        let model = model.with_cpu_inference(device);
        let mut prior = Self::from_parts(card, model, shape, &dir)?;
        // A companion that cannot be read is skipped with a note: the prior itself still works
        // for every sampler that does not need it.
        if let Some(p) = sibling(&dir, "eps") {
            match read_model(&p, device) {
                Ok((card, model, path)) => {
                    if card.eps.as_ref().is_some_and(|e| e.base == prior.card.name) {
                        let model = model.with_cpu_inference(device);
                        let tiling = prior.tiling;
                        prior.eps = Some(EpsDenoiser {
                            card,
                            model,
                            path,
                            tiling,
                        });
                    }
                }
                Err(e) => eprintln!("note: ignoring the EPS fine-tune beside the prior: {e}"),
            }
        }
        if let Some(p) = sibling(&dir, "cm") {
            match read_model(&p, device) {
                Ok((card, model, path)) => {
                    let ours = card.generator.as_ref().map(|g| &g.base) == Some(&prior.card.name);
                    if ours {
                        let model = model.with_cpu_inference(device);
                        prior.generator = Some(Generator {
                            card,
                            net: GeneratorNet::Trained(Box::new(model)),
                            path,
                        });
                    }
                }
                Err(e) => eprintln!("note: ignoring the one-step generator beside the prior: {e}"),
            }
        }
        Ok(prior)
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
        let unet = card.trained_unet()?.clone();
        let record = crate::backend::quiet_stderr(|| {
            ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights.to_vec()))
        })
        .map_err(|e| Error::file(name, format!("cannot read weights: {e}")))?;
        let model = EdmUNet::new(&unet, device)
            .try_load_record(record)
            .map_err(|e| Error::file(name, format!("weights do not fit the card: {e}")))?
            .with_cpu_inference(device);
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
        let card_tiling = card.any_size.then(Tiling::default);
        Ok(Self {
            card,
            model,
            shape,
            path: path.to_path_buf(),
            eps: None,
            generator: None,
            tiling: card_tiling,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tiles for large pictures (None: the whole picture in one call). Only any-size priors
    /// can be tiled.
    pub fn with_tiling(mut self, tiling: Option<Tiling>) -> Self {
        self.tiling = tiling.filter(|_| self.card.any_size);
        if let Some(e) = self.eps.as_mut() {
            e.tiling = self.tiling;
        }
        self
    }

    pub fn tiling(&self) -> Option<Tiling> {
        self.tiling
    }

    /// D(x, σ) by one network call on x as it is.
    fn untiled(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        let [b, _, _, _] = x.dims();
        let s = Tensor::<1>::full([b], sigma, &x.device());
        self.model.denoise(x, None, s)
    }

    fn plan(&self, x: &Tensor<4>) -> Option<super::tiles::Plan> {
        let [_, _, h, w] = x.dims();
        self.tiling?.plan(h, w)
    }
}

impl Denoiser for NetworkPrior {
    fn denoise_vjp(&self, x: &Tensor<4>, sigma: f64) -> Option<(Tensor<4>, super::Pullback)> {
        match self.plan(x) {
            Some(plan) => plan.denoise_vjp(x, |t| self.model.denoise_vjp(t, None, sigma)),
            None => self.model.denoise_vjp(x, None, sigma),
        }
    }

    fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        let whole = |x: Tensor<4>| self.untiled(x, sigma);
        match self.plan(&x) {
            // Reading a tile batch back can only fail on a lost device; the whole-picture
            // call then reports the same failure the way every other evaluation does.
            Some(plan) => plan.denoise(x.clone(), whole).unwrap_or_else(|_| whole(x)),
            None => whole(x),
        }
    }

    fn denoise_where(&self, x: Tensor<4>, sigma: f64, needed: &[bool]) -> Tensor<4> {
        let whole = |x: Tensor<4>| self.untiled(x, sigma);
        match self.plan(&x).filter(|_| !x.is_autodiff()) {
            Some(plan) => {
                let c = x.dims()[1];
                plan.denoise_where(x.clone(), c, Some(needed), whole)
                    .unwrap_or_else(|_| self.denoise(x, sigma))
            }
            None => self.denoise(x, sigma),
        }
    }

    fn spread_calibration(&self) -> &[crate::calibration::SpreadCalibration] {
        &self.card.calibration
    }

    fn share_of_work(&self, h: usize, w: usize, needed: &[bool]) -> f64 {
        match self.tiling.and_then(|t| t.plan(h, w)) {
            Some(plan) => plan.tiles_touching(needed).len() as f64 / plan.tiles().max(1) as f64,
            None => 1.0,
        }
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

    fn any_size(&self) -> bool {
        self.card.any_size
    }

    fn eps_denoiser(
        &self,
        op: &dyn crate::operators::Operator,
        sigma_y: f64,
    ) -> Option<&EpsDenoiser> {
        self.eps.as_ref().filter(|e| e.matches(op, sigma_y))
    }

    fn generator(&self) -> Option<&Generator> {
        self.generator.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The EPS denoiser of an any-size prior runs in the prior's tiles, reading μ⋆ and the
    /// observation tile by tile: with the observation's weights zero (a fine-tune's start) it
    /// is exactly the prior's tiled denoiser, whatever the observation holds.
    #[test]
    fn eps_denoiser_runs_in_the_priors_tiles() {
        let device = Device::flex();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/photo");
        let prior = NetworkPrior::load(&dir, None, &device).unwrap();
        let (card, model, path) = read_model(&dir, &device).unwrap();
        let tiled = EpsDenoiser {
            card,
            model: model.widen_input(3).with_cpu_inference(&device),
            path,
            tiling: prior.tiling(),
        };
        let mut rng = crate::tensor::rng(4);
        let (h, w) = (100, 90);
        assert!(prior.tiling().and_then(|t| t.plan(h, w)).is_some());
        let mu = crate::tensor::normal(&mut rng, [2, 3, h, w], &device);
        let obs = crate::tensor::normal(&mut rng, [2, 3, h, w], &device).mul_scalar(5.0);
        let want = crate::tensor::to_vec(&prior.denoise(mu.clone(), 0.3)).unwrap();
        let got = crate::tensor::to_vec(&tiled.denoise(mu.clone(), obs.clone(), 0.3)).unwrap();
        let gap = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(gap < 1e-5, "tiled EPS vs the prior's tiles: {gap}");
        // Whole, the same network gives another answer (its statistics span the picture).
        let whole = EpsDenoiser {
            tiling: None,
            ..tiled
        };
        let other = crate::tensor::to_vec(&whole.denoise(mu, obs, 0.3)).unwrap();
        assert!(other.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    /// Every shipped card reads in the project's one RON dialect and survives a write/read.
    #[test]
    fn shipped_cards_parse_and_round_trip() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut seen = 0;
        for entry in std::fs::read_dir(&models).unwrap() {
            let card = entry.unwrap().path().join("card.ron");
            if !card.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&card).unwrap();
            let parsed = ModelCard::parse(&text, &card).unwrap();
            let again = ModelCard::parse(&parsed.to_ron().unwrap(), &card).unwrap();
            assert_eq!(parsed, again, "{}", card.display());
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} cards under {}", models.display());
    }

    #[test]
    fn a_misspelt_card_field_is_an_error() {
        let card =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fashion-mnist/card.ron");
        let text = std::fs::read_to_string(&card).unwrap();
        let bad = text.replace("trained_steps", "trainned_steps");
        let err = ModelCard::parse(&bad, &card).unwrap_err().to_string();
        assert!(err.contains("trainned_steps"), "{err}");
    }
}
