//! An imported checkpoint as a prior: the ADM network ([`super::adm`]) behind its
//! parameterisation ([`super::parameterisation`]), for pictures of its own size or larger ones
//! in overlapping tiles of its size (shared noise, the photo priors' tiling). A picture smaller
//! than the network's size is refused with what to change: never a silent resize.

use super::adm::{AdmNet, HostWeights};
use super::card::{CHECKPOINT_WEIGHTS, CheckpointCard, ModelCard};
use super::network::Generator;
use super::parameterisation::{Parameterisation, Schedule};
use super::tiles::Tiling;
use super::{Denoiser, tiles::Plan};
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The network of an imported model with its parameterisation: D(x, σ) (a consistency
/// model's f(x, σ)) on pictures of its size, or larger ones in tiles.
pub struct ImportedNet {
    pub card: ModelCard,
    pub net: AdmNet,
    pub schedule: Schedule,
    /// The class a class-conditional network is asked for.
    pub class: Option<usize>,
    tiling: Tiling,
    pub path: PathBuf,
}

/// An imported model as a prior, with the consistency model that samples through it when
/// there is one: itself (a consistency model alone), or an imported `NAME-cm` beside it.
pub struct ImportedPrior {
    pub core: Arc<ImportedNet>,
    shape: [usize; 3],
    generator: Option<Generator>,
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
    let tensors = crate::checkpoint::safetensors::read(&map).map_err(|e| Error::file(&path, e))?;
    let mut out = HostWeights::new();
    for t in tensors {
        let v = t.to_f32().map_err(|e| Error::file(&path, e.to_string()))?;
        out.insert(t.name.clone(), (v, t.shape.clone()));
    }
    Ok(out)
}

impl ImportedNet {
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

    /// D(x, σ) with its pullback on the CPU path (one host forward with a tape, then the
    /// backward pass): None without a CPU path or for x carrying autodiff.
    pub fn untiled_vjp(&self, x: &Tensor<4>, sigma: f64) -> Option<(Tensor<4>, super::Pullback)> {
        let cpu = self.net.cpu().filter(|_| !x.is_autodiff())?;
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let step = self.schedule.step(sigma);
        let (a, k) = self.schedule.combine(sigma);
        let xv = crate::tensor::to_vec(x).ok()?;
        let cin = step.c_in as f32;
        let xin: Vec<f32> = xv.iter().map(|v| v * cin).collect();
        let classes = self.class.map(|k| vec![k; b]);
        let t = vec![step.t; b];
        let (f, tapes) = cpu.forward_tapes(&xin, [b, c, h, w], &t, classes.as_deref());
        let o = cpu.out_channels();
        let (af, kf) = (a as f32, k as f32);
        let per = c * h * w;
        let mut d = Vec::with_capacity(xv.len());
        for n in 0..b {
            let fx = &f[n * o * h * w..n * o * h * w + per];
            d.extend(
                xv[n * per..(n + 1) * per]
                    .iter()
                    .zip(fx)
                    .map(|(x, f)| af * x + kf * f),
            );
        }
        let pullback: super::Pullback = Box::new(move |v: Tensor<4>| {
            let vv = crate::tensor::to_vec(&v)?;
            let mut df = vec![0.0f32; b * o * h * w];
            for n in 0..b {
                for (d, v) in df[n * o * h * w..n * o * h * w + per]
                    .iter_mut()
                    .zip(&vv[n * per..(n + 1) * per])
                {
                    *d = kf * v;
                }
            }
            let dxin = cpu.backward_batch(&tapes, &df);
            let dx: Vec<f32> = vv
                .iter()
                .zip(dxin.iter().take(vv.len()))
                .map(|(v, g)| af * v + cin * g)
                .collect();
            Ok(crate::tensor::from_vec(dx, [b, c, h, w], &v.device()))
        });
        Some((crate::tensor::from_vec(d, [b, c, h, w], &device), pullback))
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

impl ImportedNet {
    /// D(x, σ) by the checked evaluation; the class was checked at load, so the call cannot
    /// fail on it: a failure comes back as the input, which the samplers' checks report.
    pub fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        self.try_denoise(x.clone(), sigma).unwrap_or(x)
    }
}

impl ImportedPrior {
    /// Loads an imported model folder as a prior for pictures of `shape`, with an imported
    /// consistency model `NAME-cm` beside it as its one-step generator.
    pub fn load(
        dir: &Path,
        card: ModelCard,
        shape: Option<[usize; 3]>,
        class: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let shape = shape.unwrap_or(card.shape);
        let core = Arc::new(ImportedNet::load(dir, card, Some(shape), class, device)?);
        let generator = if core.is_consistency() {
            Some(Generator::imported(core.clone()))
        } else {
            companion(dir, shape, class, device).map(Generator::imported)
        };
        Ok(Self {
            core,
            shape,
            generator,
        })
    }

    /// The checked evaluation (see [`ImportedNet::try_denoise`]).
    pub fn try_denoise(&self, x: Tensor<4>, sigma: f64) -> Result<Tensor<4>> {
        self.core.try_denoise(x, sigma)
    }
}

/// An imported consistency model in `NAME-cm` beside the prior's folder, if one loads for the
/// same pictures and class (one that does not is skipped with a note).
fn companion(
    dir: &Path,
    shape: [usize; 3],
    class: Option<usize>,
    device: &Device,
) -> Option<Arc<ImportedNet>> {
    let cm = super::network::sibling(dir, "cm")?;
    let card_path = cm.join(super::card::CARD_FILE);
    let card = ModelCard::parse(&crate::files::read_text(&card_path).ok()?, &card_path).ok()?;
    let is_cm = card
        .checkpoint
        .as_ref()
        .is_some_and(|c| matches!(c.parameterisation, Parameterisation::Consistency { .. }));
    if !is_cm {
        return None;
    }
    match ImportedNet::load(&cm, card, Some(shape), class, device) {
        Ok(net) => Some(Arc::new(net)),
        Err(e) => {
            eprintln!("note: ignoring the consistency model beside the prior: {e}");
            None
        }
    }
}

impl Denoiser for ImportedPrior {
    fn denoise(&self, x: Tensor<4>, sigma: f64) -> Tensor<4> {
        self.core.denoise(x, sigma)
    }

    fn denoise_vjp(&self, x: &Tensor<4>, sigma: f64) -> Option<(Tensor<4>, super::Pullback)> {
        let core = &self.core;
        match core.plan(x) {
            Some(plan) => plan.denoise_vjp(x, |t| core.untiled_vjp(t, sigma)),
            None => core.untiled_vjp(x, sigma),
        }
    }

    fn denoise_where(&self, x: Tensor<4>, sigma: f64, needed: &[bool]) -> Tensor<4> {
        let core = &self.core;
        let whole = |t: Tensor<4>| core.untiled(t.clone(), sigma).unwrap_or(t);
        match core.plan(&x).filter(|_| !x.is_autodiff()) {
            Some(plan) => {
                let c = x.dims()[1];
                plan.denoise_where(x.clone(), c, Some(needed), whole)
                    .unwrap_or_else(|_| self.denoise(x, sigma))
            }
            None => self.denoise(x, sigma),
        }
    }

    fn share_of_work(&self, h: usize, w: usize, needed: &[bool]) -> f64 {
        match self.core.tiling.plan(h, w) {
            Some(plan) => plan.tiles_touching(needed).len() as f64 / plan.tiles().max(1) as f64,
            None => 1.0,
        }
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn describe(&self) -> String {
        let core = &self.core;
        let c = core.card.checkpoint.as_ref();
        let class = core
            .class
            .map(|k| format!(", class {k}"))
            .unwrap_or_default();
        let kind = if core.is_consistency() {
            "consistency model"
        } else {
            "imported model"
        };
        format!(
            "{kind} '{}' (from {}{class})",
            core.card.name,
            c.map_or("", |c| c.source.as_str()),
        )
    }

    fn sigma_range(&self) -> (f64, f64) {
        self.core.schedule.range()
    }

    fn generator(&self) -> Option<&Generator> {
        self.generator.as_ref()
    }

    fn generator_only(&self) -> bool {
        self.core.is_consistency()
    }

    fn imported(&self) -> Option<&ImportedPrior> {
        Some(self)
    }
}
