//! `posterior-lab bench --photo`: a held-out photo restored at its size for each degradation,
//! with `Auto`'s choice (and any other sampler lines), against the classical baseline; and
//! `bench --tiles`: how the photo prior denoises whole pictures against tiles of each size.

use super::degradation::Degradation;
use crate::backend::Selection;
use crate::error::{Error, Result};
use crate::metrics::psnr;
use crate::operators::Operator;
use crate::photo::{self, Picture};
use crate::priors::{Denoiser, NetworkPrior, Tiling};
use crate::problem::Problem;
use crate::samplers;
use crate::tensor;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The held-out photo (never in any training set: assets/demo, see models/photo/README.md).
pub const PHOTO: &str = "assets/demo/picosdeeuropa.jpg";

fn load_prior(
    model: &Path,
    shape: [usize; 3],
    device: &burn::tensor::Device,
) -> Result<NetworkPrior> {
    NetworkPrior::load(model, Some(shape), device)
}

/// The picture a photo table restores.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The held-out photo (default [`PHOTO`]).
    pub image: Option<&'a Path>,
    /// The whole frame with its longer side shrunk to the size, instead of its centre square.
    pub whole: bool,
}

fn load_truth(path: &Path, side: usize, whole: bool) -> Result<Picture> {
    let bytes = crate::files::read(path, crate::files::MAX_DATA_BYTES).map_err(|e| {
        Error::invalid("bench --photo", format!("run it from the source tree: {e}"))
    })?;
    if whole {
        // Multiples of 4: every degradation's factor divides the size.
        return Ok(photo::fit(&bytes, path, 3, side, 4)?.0);
    }
    photo::square_crop(&bytes, &path.display().to_string(), side)
}

/// The table: every size × degradation × sampler line.
pub fn photo_table(
    sel: &Selection,
    sizes: &[usize],
    lines: &[String],
    chains: usize,
    only: Option<&[String]>,
    source: Source,
    model: &Path,
) -> Result<()> {
    let image = source.image.unwrap_or(Path::new(PHOTO));
    if let Some(keys) = only
        && let Some(bad) = keys.iter().find(|k| {
            !(Degradation::ALL.iter())
                .chain(&Degradation::NONLINEAR)
                .any(|d| d.key() == k.as_str())
        })
    {
        return Err(Error::invalid(
            "--only",
            format!(
                "unknown degradation '{bad}' (sr2, sr4, scratches, deblur, denoise, colourise, \
                 jpeg10, jpeg20, clip, poisson20)"
            ),
        ));
    }
    println!(
        "# Photo restoration at its own size ({chains} chains, held-out {}, {}, prior {}, {})\n",
        image.display(),
        if source.whole {
            "the whole frame"
        } else {
            "centre square"
        },
        model.display(),
        sel.description
    );
    println!(
        "PSNR of the posterior mean against the truth; gain = that minus the classical baseline's. Seconds: the whole run (all chains), this machine.\n"
    );
    for &side in sizes {
        let truth = load_truth(image, side, source.whole)?;
        let shape = truth.shape;
        let [_, h, w] = shape;
        let prior: Arc<dyn Denoiser> = Arc::new(load_prior(model, shape, &sel.device)?);
        let named = |d: &Degradation| only.is_some_and(|keys| keys.iter().any(|k| k == d.key()));
        let chosen = (Degradation::ALL
            .iter()
            .filter(|d| only.is_none() || named(d)))
        .chain(Degradation::NONLINEAR.iter().filter(|d| named(d)));
        for &deg in chosen {
            println!("## {w}×{h}: {}\n", deg.label());
            println!(
                "| sampler | chose | NFE/chain | seconds | PSNR mean (dB) | baseline | baseline (dB) | gain (dB) | PSNR of a chain (dB) | chain detail | spread/error |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            // Where the picture was restored: the holes for scratches, else all of it.
            let region = (deg == Degradation::Scratches).then(|| {
                photo::scratches(h, w, 0.1, 7)
                    .iter()
                    .map(|m| 1.0 - m)
                    .collect::<Vec<f32>>()
            });
            let op: Arc<dyn Operator> = Arc::from(deg.operator(shape)?);
            let x = tensor::from_vec(truth.data.clone(), [1, 3, h, w], &sel.device);
            let (yv, problem) = deg.measure(prior.clone(), op.clone(), x.clone(), &sel.device)?;
            let problem = problem.with_truth(x)?;
            let (base, base_name) = deg.baseline(op.as_ref(), &yv, &truth)?;
            let p_base = psnr(&base, &truth.data);
            for line in lines {
                let spec = samplers::parse(line)
                    .map_err(|e| Error::invalid("sampler", format!("{line}: {e}")))?;
                let start = Instant::now();
                let mut s = samplers::build(&spec, &problem, chains, 3)?;
                samplers::run(s.as_mut(), &problem, |_| {})?;
                let secs = start.elapsed().as_secs_f64();
                let out = tensor::to_vec(&s.samples())?;
                let (mean, _) = crate::metrics::mean_variance(&out, chains);
                let p = psnr(&mean, &truth.data);
                let detail = s.detail().unwrap_or_default();
                let chose = samplers::auto::chosen_in(&detail).unwrap_or("—");
                let each = chain_figures(&out, &mean, &truth, region.as_deref(), chains);
                println!(
                    "| {line} | {chose} | {} | {secs:.1} | {p:.2} | {base_name} | {p_base:.2} | {:+.2} | {:.2} | {:.2} | {:.2} |",
                    s.state().nfe,
                    p - p_base,
                    each.psnr,
                    each.detail,
                    each.spread_over_error
                );
                if let Some(d) = s.detail() {
                    eprintln!("  {line}: {d}");
                }
                if let Some(peak) = crate::recipe::peak_memory() {
                    eprintln!(
                        "  peak memory of this process so far: {:.2} GB",
                        peak as f64 / 1e9
                    );
                }
            }
            for (other, name) in deg.extra_baselines(&yv, &truth)? {
                println!("\n{name}: {:.2} dB.", psnr(&other, &truth.data));
            }
            if deg == Degradation::Scratches {
                // Gaussian interpolation leaves wide blots unfilled; the push-pull fill (where
                // the warm start begins) is the fairer classical answer there.
                let mask = photo::scratches(h, w, 0.1, 7);
                let fill = photo::fill_holes(&yv, &mask, shape)?;
                println!(
                    "\nThe push-pull fill of the holes (the warm start's own start): {:.2} dB.",
                    psnr(&fill, &truth.data)
                );
            }
            println!();
        }
    }
    Ok(())
}

/// What the chains are one by one, beside their mean.
struct ChainFigures {
    /// Mean over chains of each chain's PSNR.
    psnr: f64,
    /// Mean over chains of `metrics::detail_ratio` in the restored region.
    detail: f64,
    /// The chains' variance over the mean's squared error (raw spread; 1 is honest).
    spread_over_error: f64,
}

fn chain_figures(
    out: &[f32],
    mean: &[f32],
    truth: &Picture,
    region: Option<&[f32]>,
    chains: usize,
) -> ChainFigures {
    let d = truth.data.len();
    let k = chains.max(1) as f64;
    let (mut p, mut detail) = (0.0, 0.0);
    for chain in out.chunks(d).take(chains) {
        p += psnr(chain, &truth.data) / k;
        detail += crate::metrics::detail_ratio(chain, &truth.data, truth.shape, region) / k;
    }
    let (_, var) = crate::metrics::mean_variance(out, chains);
    let var: f64 = var.iter().map(|v| f64::from(*v)).sum::<f64>();
    let err: f64 = mean
        .iter()
        .zip(&truth.data)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    ChainFigures {
        psnr: p,
        detail,
        spread_over_error: var / err.max(1e-20),
    }
}

/// The spread's calibration (`bench --photo --fit-spread DIR`): every photo of DIR (sorted by
/// name; even-numbered ones fit, odd-numbered ones check) as a centre square of `side`, each
/// degradation and sampler line run with `chains` chains; prints per line the factor, what the
/// check half measures with and without it, and the model card's entry.
pub fn fit_spread(
    sel: &Selection,
    dir: &Path,
    side: usize,
    lines: &[String],
    chains: usize,
    only: Option<&[String]>,
    model: &Path,
) -> Result<()> {
    use crate::calibration::{self, SpreadCalibration};
    let photos = crate::batch::photos(dir)?;
    if photos.len() < 2 {
        return Err(Error::invalid(
            "--fit-spread",
            format!("{} holds fewer than 2 photos", dir.display()),
        ));
    }
    let names: Vec<String> = photos
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .collect();
    let truths = (photos.iter())
        .map(|p| load_truth(p, side, false))
        .collect::<Result<Vec<_>>>()?;
    let shape = truths[0].shape;
    let prior: Arc<dyn Denoiser> = Arc::new(load_prior(model, shape, &sel.device)?);
    let mut entries = vec![];
    println!(
        "| degradation | sampler | factor (floor) | raw 90% / 95% | calibrated 90% / 95% | calibrated var / sq. error |"
    );
    println!("|---|---|---|---|---|---|");
    for deg in Degradation::ALL {
        if only.is_some_and(|keys| !keys.iter().any(|k| k == deg.key())) {
            continue;
        }
        let op: Arc<dyn Operator> = Arc::from(deg.operator(shape)?);
        for line in lines {
            let spec = samplers::parse(line)
                .map_err(|e| Error::invalid("sampler", format!("{line}: {e}")))?;
            // [fit, check] halves: errors and stds of every pixel.
            let mut halves: [(Vec<f32>, Vec<f32>); 2] = Default::default();
            let mut chosen = line.clone();
            for (k, truth) in truths.iter().enumerate() {
                let x =
                    tensor::from_vec(truth.data.clone(), [1, shape[0], side, side], &sel.device);
                let y = crate::recipe::simulate_y(op.as_ref(), x, deg.sigma_y(), 1);
                let problem = Problem::new(
                    prior.clone(),
                    op.clone(),
                    y,
                    deg.sigma_y(),
                    sel.device.clone(),
                )?;
                let mut s = samplers::build(&spec, &problem, chains, 3)?;
                samplers::run(s.as_mut(), &problem, |_| {})?;
                let detail = s.detail().unwrap_or_default();
                if let Some(c) = samplers::auto::chosen_in(&detail) {
                    chosen = c.to_string();
                }
                let out = tensor::to_vec(&s.samples())?;
                let (e, sd) = calibration::error_and_std(&out, chains, &truth.data);
                halves[k % 2].0.extend(e);
                halves[k % 2].1.extend(sd);
            }
            let [(fe, fs), (ce, cs)] = &halves;
            let (factor, floor) = calibration::fit(fe, fs);
            let (r90, r95, _) = calibration::check(ce, cs, 1.0, 0.0);
            let (c90, c95, ratio) = calibration::check(ce, cs, factor, floor);
            println!(
                "| {} | {chosen} | {factor:.2} (floor {floor}) | {:.1}% / {:.1}% | {:.1}% / {:.1}% | {ratio:.2} |",
                deg.label(),
                100.0 * r90,
                100.0 * r95,
                100.0 * c90,
                100.0 * c95
            );
            let list = |parity: usize| {
                (names.iter().enumerate())
                    .filter(|(i, _)| i % 2 == parity)
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            entries.push(SpreadCalibration {
                task: op.task(),
                sampler: chosen,
                chains,
                factor: (factor * 1000.0).round() / 1000.0,
                floor,
                fitted_on: format!(
                    "{}, centre squares of {side}² ({}, {chains} chains), seed 3; fitted on {}",
                    dir.display(),
                    deg.label(),
                    list(0)
                ),
                checked: format!(
                    "on {}: 90% interval covers {:.1}%, 95% {:.1}% (unscaled {:.1}%, {:.1}%); \
                     calibrated variance / squared error {ratio:.2}",
                    list(1),
                    100.0 * c90,
                    100.0 * c95,
                    100.0 * r90,
                    100.0 * r95
                ),
            });
        }
    }
    println!("\nThe model card's entries (calibration: [...]):\n");
    for e in &entries {
        println!(
            "{},",
            ron::ser::to_string_pretty(e, ron::ser::PrettyConfig::default())
                .map_err(|e| Error::invalid("calibration", e.to_string()))?
        );
    }
    Ok(())
}

/// Denoising a held-out photo with the whole picture in one call against tiles of each size:
/// MSE ratio to the identity's and seconds per evaluation, at three noise levels.
pub fn tiles_table(sel: &Selection, model: &Path, side: usize) -> Result<()> {
    let truth = load_truth(Path::new(PHOTO), side, false)?;
    let shape = truth.shape;
    println!(
        "# The photo prior {} on a {side}×{side} held-out photo ({PHOTO}): whole picture vs tiles ({})\n",
        model.display(),
        sel.description
    );
    println!("| tiling | tiles | σ 0.05 PSNR | σ 0.2 PSNR | σ 1 PSNR | seconds per NFE |");
    println!("|---|---|---|---|---|---|");
    let configs: Vec<Option<Tiling>> = vec![
        None,
        Some(Tiling {
            tile: 32,
            overlap: 8,
        }),
        Some(Tiling {
            tile: 48,
            overlap: 12,
        }),
        Some(Tiling {
            tile: 64,
            overlap: 16,
        }),
        Some(Tiling {
            tile: 96,
            overlap: 16,
        }),
        Some(Tiling {
            tile: 128,
            overlap: 32,
        }),
    ];
    let x = tensor::from_vec(truth.data.clone(), [1, 3, side, side], &sel.device);
    for cfg in configs {
        let prior = load_prior(model, shape, &sel.device)?.with_tiling(cfg);
        let mut cells = vec![];
        let mut secs = 0.0;
        for (k, sigma) in [0.05, 0.2, 1.0].into_iter().enumerate() {
            let noise = tensor::normal(
                &mut tensor::rng(40 + k as u64),
                [1, 3, side, side],
                &sel.device,
            );
            let start = Instant::now();
            let d = prior.denoise(x.clone() + noise.mul_scalar(sigma), sigma);
            let dv = tensor::to_vec(&d)?;
            secs += start.elapsed().as_secs_f64();
            cells.push(format!("{:.2}", psnr(&dv, &truth.data)));
        }
        let (name, tiles) = match cfg {
            None => ("whole picture".to_string(), 1),
            Some(t) => (
                format!("{} px, overlap {}", t.tile, t.overlap),
                t.plan(side, side).map_or(1, |p| p.tiles()),
            ),
        };
        println!(
            "| {name} | {tiles} | {} | {:.2} |",
            cells.join(" | "),
            secs / 3.0
        );
    }
    Ok(())
}
