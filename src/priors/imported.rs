//! An imported checkpoint as a prior: the ADM network ([`super::adm`]) behind its
//! parameterisation ([`super::parameterisation`]), for pictures of its own size or larger ones
//! in overlapping tiles of its size (shared noise, the photo priors' tiling). A picture smaller
//! than the network's size is refused with what to change: never a silent resize.

use super::adm::{AdmNet, HostWeights};
use super::card::{CHECKPOINT_WEIGHTS, CheckpointCard, ModelCard};
use super::parameterisation::{Parameterisation, Schedule};
use super::tiles::Tiling;
use super::{Denoiser, tiles::Plan};
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor};
use std::path::{Path, PathBuf};

pub struct ImportedPrior {
    pub card: ModelCard,
    pub net: AdmNet,
    pub schedule: Schedule,
    /// The class a class-conditional network is asked for.
    pub class: Option<usize>,
    shape: [usize; 3],
    tiling: Tiling,
    pub path: PathBuf,
}

fn checkpoint(card: &ModelCard) -> Result<&CheckpointCard> {
    card.checkpoint
        .as_ref()
        .ok_or_else(|| Error::invalid(&card.name, "not an imported checkpoint"))
}

/// The stored weights of an imported model folder, as f32 on the host.
pub fn read_weights(dir: &Path) -> Result<HostWeights> {
    let path = dir.join(CHECKPOINT_WEIGHTS);
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::file(&path, format!("cannot open the model's weights: {e}")))?;
    // SAFETY: read-only map of a file the import wrote; every read is bounds-checked.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| Error::file(&path, format!("cannot read the model's weights: {e}")))?;
    let tensors =
        crate::checkpoint::safetensors::read(&map).map_err(|e| Error::file(&path, e))?;
    let mut out = HostWeights::new();
    for t in tensors {
        let v = t.to_f32().map_err(|e| Error::file(&path, e.to_string()))?;
        out.insert(t.name.clone(), (v, t.shape.clone()));
    }
    Ok(out)
}

impl ImportedPrior {
    /// Loads an imported model folder for pictures of `shape` (None: the network's own size).
    pub fn load(
        dir: &Path,
        card: ModelCard,
        shape: Option<[usize; 3]>,
        class: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let c = checkpoint(&card)?.clone();
        let size = c.network.image_size;
        let shape = shape.unwrap_or(card.shape);
        if shape[0] != c.network.in_channels {
            return Err(Error::file(
                dir,
                format!(
                    "model '{}' restores colour pictures ({} channels); this picture has {}",
                    card.name, c.network.in_channels, shape[0]
                ),
            ));
        }
        if shape[1] < size || shape[2] < size {
            return Err(Error::file(
                dir,
                format!(
                    "model '{}' works on pictures of at least {size}×{size} (larger ones in \
                     tiles of that size); this one is {}×{}: enlarge it, or choose a model made \
                     for smaller pictures",
                    card.name, shape[2], shape[1]
                ),
            ));
        }
        match (c.network.num_classes, class) {
            (Some(_), None) => {
                return Err(Error::file(
                    dir,
                    format!(
                        "model '{}' is class-conditional: give a class (a recipe's \
                         `class: 207`, --class 207)",
                        card.name
                    ),
                ));
            }
            (Some(n), Some(k)) if k >= n => {
                return Err(Error::invalid(
                    "class",
                    format!("{k} is not one of model '{}''s {n} classes", card.name),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "class",
                    format!("model '{}' is not class-conditional", card.name),
                ));
            }
            _ => {}
        }
        let weights = read_weights(dir)?;
        let net = AdmNet::new(c.network.clone(), weights, device)
            .map_err(|e| Error::file(dir, e.to_string()))?;
        Ok(Self {
            schedule: Schedule::new(c.parameterisation.clone()),
            card,
            net,
            class,
            shape,
            tiling: Tiling {
                tile: size,
                overlap: size / 4,
            },
            path: dir.to_path_buf(),
        })
    }

    pub fn is_consistency(&self) -> bool {
        matches!(self.schedule.kind, Parameterisation::Consistency { .. })
    }

    /// D(x, σ) (a consistency model's f(x, σ)) by one network call on x as it is.
    pub fn untiled(&self, x: Tensor<4>, sigma: f64) -> Result<Tensor<4>> {
        let [b, c, _, _] = x.dims();
        let step = self.schedule.step(sigma);
        let (a, k) = self.schedule.combine(sigma);
        let classes = self.class.map(|k| vec![k; b]);
        let f = self.net.forward(
            x.clone().mul_scalar(step.c_in),
            &vec![step.t; b],
            classes.as_deref(),
        )?;
        let [_, _, h, w] = f.dims();
        let f = f.slice([0..b, 0..c, 0..h, 0..w]);
        Ok(x.mul_scalar(a) + f.mul_scalar(k))
    }

    fn plan(&self, x: &Tensor<4>) -> Option<Plan> {
        let [_, _, h, w] = x.dims();
        self.tiling.plan(h, w)
    }

    /// The checked evaluation: a failing network call (a wrong class) as an error.
    pub fn try_denoise(&self, x: Tensor<4>, sigma: f64) -> Result<Tensor<4>> {
        match self.plan(&x) {
            Some(plan) => {
                let out = std::cell::RefCell::new(None);
                let y = plan.denoise(x, |t| match self.untiled(t.clone(), sigma) {
                    Ok(y) => y,
                    Err(e) => {
                        out.borrow_mut().get_or_insert(e);
                        t
                    }
                })?;
                match out.into_inner() {
                    Some(e) => Err(e),
                    None => Ok(y),
                }
            }
            None => self.untiled(x, sigma),
        }
    }
}

impl Denoiser for ImportedPrior {
    fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        // The class was checked at load, so the call cannot fail on it; a lost device shows
        // as the input coming back, which the samplers' finiteness checks report.
        self.try_denoise(x.clone(), sigma).unwrap_or(x)
    }

    fn denoise_where(&self, x: Tensor<4>, sigma: f64, needed: &[bool]) -> Tensor<4> {
        let whole = |t: Tensor<4>| self.untiled(t.clone(), sigma).unwrap_or(t);
        match self.plan(&x).filter(|_| !x.is_autodiff()) {
            Some(plan) => {
                let c = x.dims()[1];
                plan.denoise_where(x.clone(), c, Some(needed), whole)
                    .unwrap_or_else(|_| self.denoise(x, sigma))
            }
            None => self.denoise(x, sigma),
        }
    }

    fn share_of_work(&self, h: usize, w: usize, needed: &[bool]) -> f64 {
        match self.tiling.plan(h, w) {
            Some(plan) => plan.tiles_touching(needed).len() as f64 / plan.tiles().max(1) as f64,
            None => 1.0,
        }
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn describe(&self) -> String {
        let c = self.card.checkpoint.as_ref();
        let class = self.class.map(|k| format!(", class {k}")).unwrap_or_default();
        format!(
            "imported model '{}' ({}, {:?}{class})",
            self.card.name,
            c.map_or("", |c| c.source.as_str()),
            c.map(|c| c.format),
        )
    }

    fn sigma_range(&self) -> (f64, f64) {
        self.schedule.range()
    }

    fn imported(&self) -> Option<&ImportedPrior> {
        Some(self)
    }
}
