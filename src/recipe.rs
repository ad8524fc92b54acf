//! The RON recipe of the command-line contract → a [`Problem`] and a sampler configuration.
//!
//! Every input is read and checked here, before anything is written anywhere, so a bad recipe
//! ends with one message naming the file and the problem.

use crate::error::{Error, Result};
use crate::image_io;
use crate::noise_model::NoiseModel;
use crate::npy;
use crate::operators::{self, OperatorSpec};
use crate::priors::{Gmm, GmmDenoiser, PriorSpec};
use crate::problem::Problem;
use crate::samplers::SamplerSpec;
use crate::tensor;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub prior: PriorSpec,
    /// (C, H, W) of x.
    pub shape: (usize, usize, usize),
    pub operator: OperatorSpec,
    pub measurement: MeasurementSpec,
    /// σ_y, in data units (with photon noise: the added Gaussian read noise, 0 for none; with
    /// `Jpeg`, 0 for the deterministic round trip).
    pub noise_sigma: f64,
    /// `Gaussian` (the default) or `Poisson(peak: P)`: photon counts, P the expected count of
    /// a white value.
    #[serde(default, skip_serializing_if = "NoiseModel::is_gaussian")]
    pub noise_model: NoiseModel,
    pub sampler: SamplerSpec,
    #[serde(default = "default_chains")]
    pub chains: usize,
    #[serde(default)]
    pub seed: u64,
    /// The class asked of a class-conditional prior (an imported ImageNet model: 207 is a
    /// golden retriever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
}

fn default_chains() -> usize {
    16
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MeasurementSpec {
    /// y read from an array with the operator's output shape.
    Npy(String),
    /// y = A(truth) + σ_y n with the recipe's seed.
    Simulate {
        truth: TruthSpec,
        /// Resize an image truth to `shape` (otherwise a size mismatch is an error).
        #[serde(default)]
        resize: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TruthSpec {
    Npy(String),
    Image(String),
}

impl Recipe {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        crate::ron_format::options()
            .from_str(&crate::samplers::auto::bare_auto_to_call(text))
            .map_err(|e| e.to_string())
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::files::read_text(path)?;
        Self::parse(&text).map_err(|e| Error::file(path, format!("not a valid recipe: {e}")))
    }

    pub fn to_ron(&self) -> Result<String> {
        crate::ron_format::to_string(self)
            .map_err(|e| Error::invalid("recipe", format!("cannot be written as RON: {e}")))
    }

    /// Every file and folder the recipe reads, resolved against `base`.
    pub fn input_paths(&self, base: &Path) -> Vec<PathBuf> {
        let mut out = vec![];
        match &self.prior {
            PriorSpec::Gmm(f) | PriorSpec::Model(f) => out.push(base.join(f)),
        }
        if let Some(f) = self.operator.file() {
            out.push(base.join(f));
        }
        match &self.measurement {
            MeasurementSpec::Npy(f) => out.push(base.join(f)),
            MeasurementSpec::Simulate { truth, .. } => match truth {
                TruthSpec::Npy(f) | TruthSpec::Image(f) => out.push(base.join(f)),
            },
        }
        out
    }

    pub fn shape(&self) -> [usize; 3] {
        [self.shape.0, self.shape.1, self.shape.2]
    }
}

/// A recipe with every input loaded and checked.
pub struct Loaded {
    pub recipe: Recipe,
    pub problem: Problem,
    /// The truth when the measurement was simulated, [C, H, W] flattened.
    pub truth: Option<Vec<f32>>,
    /// y as [C', H', W'] flattened, and its `.npy` shape.
    pub y: Vec<f32>,
    pub y_shape: Vec<usize>,
    /// The run's peak memory as [`estimate_run_bytes`] predicts it, in bytes.
    pub memory_estimate: u128,
}

/// Reads and checks a recipe file and everything it names (paths relative to its folder).
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let recipe = Recipe::from_file(path)?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_recipe(recipe, &base, device).map_err(|e| match e {
        e @ Error::File { .. } => e,
        other => Error::file(path, other.to_string()),
    })
}

/// Loads a parsed recipe whose relative paths are resolved against `base`.
pub fn load_recipe(recipe: Recipe, base: &Path, device: &Device) -> Result<Loaded> {
    let shape = recipe.shape();
    let [c, h, w] = shape;
    if c == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "shape",
            format!("every dimension must be positive, got {shape:?}"),
        ));
    }
    if !(recipe.noise_sigma.is_finite() && recipe.noise_sigma >= 0.0) {
        return Err(Error::invalid(
            "noise_sigma",
            format!("must be a number of at least 0, got {}", recipe.noise_sigma),
        ));
    }
    recipe.noise_model.check()?;
    if recipe.chains == 0 || recipe.chains > 1 << 20 {
        return Err(Error::invalid(
            "chains",
            format!("must be between 1 and {}, got {}", 1 << 20, recipe.chains),
        ));
    }
    let d = crate::files::element_count("shape", &shape).map_err(|m| Error::invalid("shape", m))?;
    // Before the prior and the operator are read: a run that cannot fit even with the
    // smallest footprint is refused at once.
    check_memory(recipe.chains, shape, Footprint::Network, available_memory())?;

    let prior: Arc<dyn crate::priors::Denoiser> = match &recipe.prior {
        PriorSpec::Gmm(file) => {
            let p = base.join(file);
            let gmm = Gmm::from_file(&p, Some(d))?;
            Arc::new(GmmDenoiser::new(gmm, shape, device).map_err(|e| e.in_file(&p))?)
        }
        PriorSpec::Model(file) => {
            let p = crate::models::resolve(file, base)?;
            crate::priors::load_model(&p, Some(shape), recipe.class, device)?
        }
    };
    let operator: Arc<dyn operators::Operator> =
        Arc::from(operators::build(&recipe.operator, shape, base, device)?);
    let footprint = Footprint::of(&recipe, prior.as_ref(), operator.as_ref());
    check_memory(recipe.chains, shape, footprint, available_memory())?;
    let memory_estimate = estimate_run_bytes(recipe.chains, shape, footprint);
    let out_shape = operator.output_shape();
    let y_shape = operator.output_npy_shape();

    let mut truth = None;
    let y: Vec<f32> = match &recipe.measurement {
        MeasurementSpec::Npy(file) => {
            let p = base.join(file);
            let arr = npy::read(&p)?;
            if arr.shape != y_shape {
                return Err(Error::file(
                    &p,
                    format!(
                        "y has shape {:?} but {} gives {:?}",
                        arr.shape,
                        operator.name(),
                        y_shape
                    ),
                ));
            }
            check_finite(&p, &arr.data)?;
            arr.data
        }
        MeasurementSpec::Simulate {
            truth: spec,
            resize,
        } => {
            let x = match spec {
                TruthSpec::Npy(file) => {
                    let p = base.join(file);
                    let arr = npy::read(&p)?;
                    let ok = arr.shape == [c, h, w]
                        || arr.shape == [1, c, h, w]
                        || (c == 1 && arr.shape == [h, w]);
                    if !ok {
                        return Err(Error::file(
                            &p,
                            format!("truth has shape {:?}, expected [{c}, {h}, {w}]", arr.shape),
                        ));
                    }
                    check_finite(&p, &arr.data)?;
                    arr.data
                }
                TruthSpec::Image(file) => image_io::load(&base.join(file), shape, *resize)?,
            };
            let xt = tensor::from_vec(x.clone(), [1, c, h, w], device);
            let y = simulate_measurement(
                operator.as_ref(),
                xt,
                (recipe.noise_model, recipe.noise_sigma),
                recipe.seed,
            )?;
            truth = Some(x);
            tensor::to_vec(&y)?
        }
    };
    let [oc, oh, ow] = out_shape;
    let yt = tensor::from_vec(y.clone(), [1, oc, oh, ow], device);
    let noise = (recipe.noise_model, recipe.noise_sigma);
    let mut problem = Problem::with_noise(prior, operator, yt, noise, device.clone())?;
    if let Some(x) = &truth {
        problem = problem.with_truth(tensor::from_vec(x.clone(), [1, c, h, w], device))?;
    }
    Ok(Loaded {
        recipe,
        problem,
        truth,
        y,
        y_shape,
        memory_estimate,
    })
}

/// What a run keeps in memory per pixel, by prior and sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footprint {
    /// A mixture prior: the chains and a handful of buffers like them.
    Mixture,
    /// A network evaluated without gradients (tiles bound its activations).
    Network,
    /// A network with gradients through it (DPS, ΠGDM…): its activations for the whole
    /// picture are kept for the backward pass.
    NetworkGradients,
}

impl Footprint {
    /// The footprint of the sampler that will really run: `Auto` counts as the line it picks
    /// for this prior and operator.
    pub fn of(
        recipe: &Recipe,
        prior: &dyn crate::priors::Denoiser,
        op: &dyn operators::Operator,
    ) -> Self {
        use crate::samplers::{SamplerSpec as S, auto};
        if prior.gmm().is_some() {
            return Footprint::Mixture;
        }
        let chosen = match &recipe.sampler {
            S::Auto(p) => {
                let fine_tune = prior.eps_denoiser(op, recipe.noise_sigma).is_some();
                let kind = auto::PriorKind::of_network(prior.any_size(), fine_tune);
                let general = !op.is_linear()
                    || !recipe.noise_model.is_gaussian()
                    || op.model_error_sigma() > 0.0;
                let line = if general {
                    auto::choose_general(
                        p,
                        kind,
                        op.task(),
                        recipe.shape().iter().product::<usize>() == 2,
                    )
                } else {
                    auto::choose_for(p, kind, op.task())
                };
                crate::samplers::parse(line).ok()
            }
            other => Some(other.clone()),
        };
        match chosen {
            Some(S::Ddrm(_) | S::DiffPir(_) | S::Prior(_) | S::Daps(_) | S::Eps(_)) => {
                Footprint::Network
            }
            _ => Footprint::NetworkGradients,
        }
    }
}

/// Bytes of a process before any picture: the program, burn's CPU runtime, a network's
/// weights, the tiles in flight and the allocator's pools (fitted below).
const BASE_BYTES: u128 = 56 << 20;

/// Peak memory of a run in bytes, fitted to `posterior-lab sample` on the CPU (summary.ron's
/// `memory`: the process's peak resident size; photo prior, 10% scratches, 64² to
/// 5312×2988, 1 to 8 chains; docs/photo-table.md): the picture's own buffers (y, the mask, the
/// classical restoration, the sampler's per-value coefficients, then the statistics, made
/// after the sampler's buffers are gone) take about 13 floats per value whatever the chains;
/// each chain adds about 6 floats per value (its state, estimate, noise and tile copies)
/// without gradients, and the network's activations, about 320 floats per pixel, when
/// gradients go through it (DPS, ΠGDM…: the whole picture's graph is kept for the backward
/// pass). A mixture keeps 16 floats per value and chain. Every measured run lies between 0.65
/// and 1 of this estimate (tests/cli.rs; 4 chains of a 5312×2988 photo peaked at 6.2 GB,
/// estimated 7.1; of 2560×1440 at 1.56 GB, estimated 1.69).
pub fn estimate_run_bytes(chains: usize, shape: [usize; 3], footprint: Footprint) -> u128 {
    let [c, h, w] = shape.map(|v| v as u128);
    let (values, pixels) = (c * h * w, h * w);
    let per_chain = match footprint {
        Footprint::Mixture => 16 * values,
        Footprint::Network => 6 * values,
        Footprint::NetworkGradients => 6 * values + 320 * pixels,
    };
    // Autodiff's own bookkeeping (its graph, the backward pass's pools) on top of the base.
    let base = match footprint {
        Footprint::NetworkGradients => BASE_BYTES + (24 << 20),
        _ => BASE_BYTES,
    };
    base + 4 * (13 * values + chains as u128 * per_chain)
}

/// The process's peak resident memory so far in bytes (Linux: VmHWM), if known.
pub fn peak_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Refuses a run whose estimated memory exceeds what the machine has, before allocating.
pub fn check_memory(
    chains: usize,
    shape: [usize; 3],
    footprint: Footprint,
    available: Option<u64>,
) -> Result<()> {
    let need = estimate_run_bytes(chains, shape, footprint);
    if let Some(have) = available
        && need > u128::from(have)
    {
        let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
        return Err(Error::invalid(
            "recipe",
            format!(
                "{chains} chains of {shape:?} need about {:.1} GiB; about {:.1} GiB is available: \
                 reduce chains or the image size",
                gib(need),
                gib(u128::from(have))
            ),
        ));
    }
    Ok(())
}

/// Memory the system can give this process now (Linux: MemAvailable), if known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// y = A(x) + σ_y n with the noise of a recipe's `seed`: [`simulate_measurement`] with
/// Gaussian noise, the same draws, for callers that know the noise is Gaussian (the bench).
pub fn simulate_y(
    operator: &dyn operators::Operator,
    x: burn::tensor::Tensor<4>,
    sigma_y: f64,
    seed: u64,
) -> burn::tensor::Tensor<4> {
    let clean = operator.forward(x);
    crate::noise_model::add_gaussian(clean, sigma_y, &mut measurement_rng(seed))
}

/// The generator of a recipe's measurement noise.
fn measurement_rng(seed: u64) -> tensor::Rng {
    tensor::rng(seed ^ 0x005e_ed0f_5e75_u64)
}

/// y = A(x) plus noise of the given model and σ, with the noise of a recipe's `seed`: the one
/// place a measurement is simulated (the command line, the window's runs and its preview all
/// call it, so the y shown is the y restored).
pub fn simulate_measurement(
    operator: &dyn operators::Operator,
    x: burn::tensor::Tensor<4>,
    (noise, sigma): (NoiseModel, f64),
    seed: u64,
) -> Result<burn::tensor::Tensor<4>> {
    let clean = operator.forward(x);
    noise.simulate(clean, sigma, &mut measurement_rng(seed))
}

fn check_finite(path: &Path, data: &[f32]) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::file(
            path,
            format!("contains a non-finite value (NaN or Inf) at flat index {i}"),
        )),
        None => Ok(()),
    }
}
