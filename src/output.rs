//! Running a loaded recipe to completion and writing its results (the contract's outputs).
//!
//! Files are first written into a hidden staging folder beside DIR and moved in only when all
//! of them are complete, so a failure leaves nothing half-written in DIR.

use crate::error::{Error, Result};
use crate::image_io;
use crate::metrics;
use crate::npy;
use crate::recipe::Loaded;
use crate::samplers::{self, ChainState};
use crate::tensor;
use crate::uncertainty::{self, Pca, PixelStats};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bytes: what [`crate::recipe::estimate_run_bytes`] predicted before the run, and the
/// process's peak resident memory at its end (statistics included, files not yet written).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MemoryFigures {
    pub estimated_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_bytes: Option<u64>,
}

/// `summary.ron`'s `calibration`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationSummary {
    pub factor: f64,
    /// Added to the chains' std in quadrature before the factor.
    #[serde(default)]
    pub floor: f64,
    pub fitted_on: String,
    /// Chains the factor was fitted with (the run's count may differ).
    pub chains: usize,
}

/// What a finished run produced.
pub struct RunResult {
    pub shape: [usize; 3],
    pub chains: usize,
    /// [chains, C, H, W] flattened.
    pub samples: Vec<f32>,
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    /// Principal components of the final samples.
    pub pca: Pca,
    /// Per-pixel intervals and, when the truth is known, calibration.
    pub stats: PixelStats,
    /// The prior card's spread calibration for this restoration and sampler, when measured.
    pub calibration: Option<crate::calibration::SpreadCalibration>,
    /// With `--trace`: every step's x_t and x̂0.
    pub trace: Option<Trace>,
    pub summary: Summary,
}

/// x_t and x̂0 of every chain after each step, frame 0 the start: [frames, chains, C, H, W].
pub struct Trace {
    pub frames: usize,
    pub x: Vec<f32>,
    pub x0: Vec<f32>,
}

impl Trace {
    fn push(&mut self, state: &ChainState) -> Result<()> {
        self.x.extend(tensor::to_vec(&state.x)?);
        self.x0.extend(tensor::to_vec(&state.x0_hat)?);
        self.frames += 1;
        Ok(())
    }
}

/// `summary.ron`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub sampler: String,
    /// What the sampler chose where its recipe left it a choice (EPS mode, CPS generator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_detail: Option<String>,
    pub prior: String,
    pub operator: String,
    pub backend: String,
    pub chains: usize,
    pub steps: usize,
    pub nfe_per_chain: usize,
    pub seconds: f64,
    pub noise_sigma: f64,
    /// Mean over chains of ‖y − A(x)‖ / (σ_y √m).
    pub residual: f64,
    pub residual_per_chain: Vec<f64>,
    /// PSNR (dB, data range [-1, 1]) of the posterior mean against the truth, when known.
    pub psnr_mean: Option<f64>,
    /// Mean PSNR of the individual samples against the truth, when known.
    pub psnr_samples: Option<f64>,
    /// Fraction of the chains' total variance along each principal direction (`pca.npy`).
    #[serde(default)]
    pub pca_explained: Vec<f64>,
    /// When the truth is known: (level, fraction of pixels whose truth lies in the central
    /// interval of that level), for levels 0.5, 0.8, 0.9, 0.95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Vec<(f64, f64)>>,
    /// Mean (truth − mean)² / predictive variance: about 1 when calibrated, above when
    /// over-confident (see `uncertainty::RegionFigures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z2: Option<f64>,
    /// Mean per-pixel CRPS of the chains against the truth (data units; lower is better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crps: Option<f64>,
    /// The same three over the pixels the operator does not see (inpainting holes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_unseen: Option<Vec<(f64, f64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z2_unseen: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crps_unseen: Option<f64>,
    /// The factor `calibrated_std.npy` scales the chains' standard deviation by, and the
    /// photos it was fitted on (when the prior's card has one for this restoration and sampler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationSummary>,
    /// The memory estimate the run was admitted with, and the process's peak when the
    /// operating system tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryFigures>,
}

/// Runs the recipe's sampler to the end; `on_step` sees every intermediate state.
/// What `sample` was asked for beyond the recipe.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Principal components to write (default: up to [`uncertainty::DEFAULT_COMPONENTS`], at
    /// most chains − 1); checked before anything runs.
    pub components: Option<usize>,
    /// Keep every step's x_t and x̂0 (`trace.npy`, `trace_x0.npy`).
    pub trace: bool,
}

pub fn run(
    loaded: &Loaded,
    backend: &str,
    opts: RunOptions,
    mut on_step: impl FnMut(&ChainState),
) -> Result<RunResult> {
    let components = opts.components;
    let recipe = &loaded.recipe;
    let problem = &loaded.problem;
    let k =
        components.unwrap_or(uncertainty::DEFAULT_COMPONENTS.min(recipe.chains.saturating_sub(1)));
    uncertainty::check_components(k, recipe.chains)?;
    let start = Instant::now();
    let mut sampler = samplers::build(&recipe.sampler, problem, recipe.chains, recipe.seed)?;
    let mut trace = None;
    if opts.trace {
        let frames = sampler.state().total_steps.saturating_add(1);
        let values = frames
            .checked_mul(recipe.chains)
            .and_then(|v| v.checked_mul(problem.dim()))
            .filter(|v| *v <= crate::files::MAX_ELEMENTS)
            .ok_or_else(|| {
                Error::invalid(
                    "--trace",
                    format!(
                        "{frames} frames × {} chains × {} values is more than {} per array: use \
                         fewer steps or chains",
                        recipe.chains,
                        problem.dim(),
                        crate::files::MAX_ELEMENTS
                    ),
                )
            })?;
        let mut t = Trace {
            frames: 0,
            x: Vec::with_capacity(values),
            x0: Vec::with_capacity(values),
        };
        t.push(sampler.state())?;
        trace = Some(t);
    }
    let mut traced = Ok(());
    samplers::run(sampler.as_mut(), problem, |state| {
        if let Some(t) = trace.as_mut()
            && traced.is_ok()
        {
            traced = t.push(state);
        }
        on_step(state)
    })?;
    traced?;
    let out = sampler.samples();
    let samples = tensor::to_vec(&out)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        let d = problem.dim();
        return Err(Error::NonFinite {
            what: format!("{} output (chain {})", sampler.name(), i / d),
            step: sampler.state().step,
            chains: 1,
        });
    }
    let chains = recipe.chains;
    // What the summary needs of the sampler; then its buffers (chains, estimates, the prior's
    // tiles) go before the figures below are made, so a large photo's peak is the larger of
    // the two stages, not their sum.
    let (name, detail) = (sampler.name().to_string(), sampler.detail());
    let (total_steps, nfe) = (sampler.state().total_steps, sampler.state().nfe);
    drop(sampler);
    let residuals = problem.normalized_residuals(&out)?;
    drop(out);
    let (mean, variance) = metrics::mean_variance(&samples, chains);
    let residual = residuals.iter().sum::<f64>() / residuals.len().max(1) as f64;
    let (psnr_mean, psnr_samples) = match &loaded.truth {
        Some(t) => {
            let d = t.len();
            let per: f64 =
                samples.chunks(d).map(|s| metrics::psnr(s, t)).sum::<f64>() / chains as f64;
            (Some(metrics::psnr(&mean, t)), Some(per))
        }
        None => (None, None),
    };
    let pca = uncertainty::pca(&samples, chains, k)?;
    let (_, seen) =
        crate::operators::display_measurement(problem.operator.as_ref(), problem.y.clone())?;
    let stats = uncertainty::pixel_stats(&samples, chains, loaded.truth.as_deref(), Some(&seen))?;
    let cal = stats.calibration.as_ref();
    let spread = crate::calibration::for_run(problem, &recipe.sampler, detail.as_deref());
    Ok(RunResult {
        shape: problem.shape(),
        chains,
        samples,
        mean,
        variance,
        summary: Summary {
            sampler: name,
            sampler_detail: detail,
            prior: problem.prior.describe(),
            operator: problem.operator.name(),
            backend: backend.to_string(),
            chains,
            steps: total_steps,
            nfe_per_chain: nfe,
            seconds,
            noise_sigma: problem.sigma_y,
            residual,
            residual_per_chain: residuals,
            psnr_mean,
            psnr_samples,
            pca_explained: pca.explained(),
            coverage: cal.map(|c| c.all.coverage.clone()),
            z2: cal.and_then(|c| c.all.z2),
            crps: cal.map(|c| c.all.crps),
            coverage_unseen: cal
                .and_then(|c| c.unseen.as_ref())
                .map(|u| u.coverage.clone()),
            z2_unseen: cal.and_then(|c| c.unseen.as_ref()).and_then(|u| u.z2),
            crps_unseen: cal.and_then(|c| c.unseen.as_ref()).map(|u| u.crps),
            calibration: spread.as_ref().map(|c| CalibrationSummary {
                factor: c.factor,
                floor: c.floor,
                fitted_on: c.fitted_on.clone(),
                chains: c.chains,
            }),
            memory: Some(MemoryFigures {
                estimated_bytes: u64::try_from(loaded.memory_estimate).unwrap_or(u64::MAX),
                peak_bytes: crate::recipe::peak_memory(),
            }),
        },
        pca,
        stats,
        calibration: spread,
        trace,
    })
}

/// Writes every output of the run into `dir` (created if missing), all or nothing.
pub fn write(dir: &Path, loaded: &Loaded, result: &RunResult) -> Result<()> {
    let staging = staging_dir(dir)?;
    let outcome = write_files(&staging, loaded, result).and_then(|files| {
        if crate::signals::interrupted() {
            return Err(Error::Cancelled);
        }
        commit(&staging, dir, &files)
    });
    // Empty after a commit; after a failure it holds only copies of outputs, never inputs.
    let _ = std::fs::remove_dir_all(&staging);
    outcome
}

fn staging_dir(dir: &Path) -> Result<PathBuf> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::file(&parent, format!("cannot create folder: {e}")))?;
    // Shortened, so that a long --out name still leaves room for the suffix.
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into())
        .chars()
        .take(100)
        .collect();
    remove_stale_staging(&parent, &name);
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    // A leftover of an earlier run with the same process id: outputs only, safe to drop.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| Error::file(&staging, format!("cannot create staging folder: {e}")))?;
    Ok(staging)
}

fn write_files(staging: &Path, loaded: &Loaded, r: &RunResult) -> Result<Vec<String>> {
    let [c, h, w] = r.shape;
    let mut files = vec![];
    let mut put_npy = |name: &str, shape: &[usize], data: &[f32]| -> Result<()> {
        npy::write(&staging.join(name), shape, data)?;
        files.push(name.to_string());
        Ok(())
    };
    put_npy("samples.npy", &[r.chains, c, h, w], &r.samples)?;
    put_npy("mean.npy", &[c, h, w], &r.mean)?;
    put_npy("variance.npy", &[c, h, w], &r.variance)?;
    if let Some(cal) = &r.calibration {
        let std: Vec<f32> = (r.variance.iter())
            .map(|v| cal.variance(*v, r.chains).sqrt())
            .collect();
        put_npy("calibrated_std.npy", &[c, h, w], &std)?;
    }
    put_npy("pca.npy", &[r.pca.k(), c, h, w], &r.pca.components)?;
    let pca_var: Vec<f32> = r.pca.variances.iter().map(|v| *v as f32).collect();
    put_npy("pca_variance.npy", &[r.pca.k()], &pca_var)?;
    let quantiles = [r.stats.lower.as_slice(), r.stats.upper.as_slice()].concat();
    put_npy("quantiles.npy", &[2, c, h, w], &quantiles)?;
    if let Some(t) = &r.trace {
        put_npy("trace.npy", &[t.frames, r.chains, c, h, w], &t.x)?;
        put_npy("trace_x0.npy", &[t.frames, r.chains, c, h, w], &t.x0)?;
    }
    if let Some(t) = &loaded.truth {
        put_npy("truth.npy", &[c, h, w], t)?;
        put_npy("y.npy", &loaded.y_shape, &loaded.y)?;
    }
    let summary = ron::ser::to_string_pretty(&r.summary, ron::ser::PrettyConfig::default())
        .map_err(|e| Error::invalid("summary", e.to_string()))?;
    let p = staging.join("summary.ron");
    std::fs::write(&p, summary).map_err(|e| Error::file(&p, format!("cannot write: {e}")))?;
    files.push("summary.ron".into());
    if c == 1 || c == 3 {
        image_io::save_png(
            &image_io::to_rgb(&r.mean, r.shape),
            &staging.join("mean.png"),
        )?;
        image_io::save_png(
            &image_io::variance_map(&r.variance, r.shape).0,
            &staging.join("variance.png"),
        )?;
        image_io::save_png(
            &image_io::grid(&r.samples, r.chains, r.shape, 16),
            &staging.join("samples.png"),
        )?;
        files.extend(["mean.png", "variance.png", "samples.png"].map(String::from));
    }
    Ok(files)
}

/// Every file `sample` may write: an output folder holding only these is an earlier result and
/// may be replaced; a folder holding anything else is refused.
pub const OUTPUT_NAMES: [&str; 16] = [
    "samples.npy",
    "mean.npy",
    "variance.npy",
    "calibrated_std.npy",
    "pca.npy",
    "pca_variance.npy",
    "quantiles.npy",
    "trace.npy",
    "trace_x0.npy",
    "truth.npy",
    "y.npy",
    "summary.ron",
    "mean.png",
    "variance.png",
    "samples.png",
    "x.npy",
];

/// The folder results go to: `dir` itself, or, when `dir` is a link to a folder, the folder
/// it points to (so the link stays and the results land where it leads).
pub fn resolve_out(dir: &Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && dir.is_dir() {
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
    } else {
        dir.to_path_buf()
    }
}

/// Checks, before anything runs, that `dir` can receive the outputs: it is missing, empty, or
/// an earlier result (only output names), and none of the recipe's inputs lives in it.
pub fn check_target(dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match std::fs::symlink_metadata(dir) {
        Err(_) => return Ok(()),
        Ok(m) if !m.is_dir() => {
            return Err(Error::file(
                dir,
                "exists and is not a folder: choose another --out",
            ));
        }
        Ok(_) => {}
    }
    let target = canon(dir);
    for input in inputs {
        let p = canon(input);
        if p == target || p.parent() == Some(target.as_path()) {
            return Err(Error::file(
                dir,
                format!(
                    "holds an input of the recipe ({}): outputs would replace it; choose another --out",
                    input.display()
                ),
            ));
        }
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot read: {e}")))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !OUTPUT_NAMES.contains(&name.as_str()) {
            return Err(Error::file(
                dir,
                format!(
                    "already holds other files (e.g. {name}): choose an empty or new folder for --out"
                ),
            ));
        }
    }
    Ok(())
}

/// Moves the finished outputs in as one folder: a rename of the staging folder, so `dir` holds
/// the old result or the new one, never a mix. An earlier result is swapped out, then removed.
fn commit(staging: &Path, dir: &Path, _files: &[String]) -> Result<()> {
    check_target(dir, &[])?;
    let old = dir.exists().then(|| {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".old-{}", std::process::id()));
        dir.with_file_name(name)
    });
    if let Some(old) = &old {
        std::fs::rename(dir, old)
            .map_err(|e| Error::file(dir, format!("cannot replace the earlier result: {e}")))?;
    }
    if let Err(e) = std::fs::rename(staging, dir) {
        if let Some(old) = &old {
            // Put the earlier result back: nothing is lost.
            let _ = std::fs::rename(old, dir);
        }
        return Err(Error::file(dir, format!("cannot write: {e}")));
    }
    if let Some(old) = &old {
        // Only earlier outputs (checked above).
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Removes staging folders left by runs that were killed (their process is gone).
fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Unknown elsewhere: keep the folder.
        true
    }
}
