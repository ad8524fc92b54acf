//! `posterior-lab batch`: every photo of a folder restored with one recipe template.
//!
//! The template gives the prior, the operator, σ_y, the sampler (`Auto` is the natural
//! choice), chains and seed; each photo gives the picture and its size. By default a photo is
//! a real degraded observation y (a small photo is upscaled by a `Downsample(f)` operator to
//! f times its size); with `--simulate` it is the truth and y is simulated, so PSNR can be
//! reported. Each photo gets its own output folder with the same files `sample` writes, plus
//! its recipe (so `sample` reproduces it), and `batch.md` lists them all. A photo that fails
//! is reported by name and the others still run.

use crate::error::{Error, Result};
use crate::operators::OperatorSpec;
use crate::output::{self, RunOptions};
use crate::priors::PriorSpec;
use crate::recipe::{self, MeasurementSpec, Recipe, TruthSpec};
use std::path::{Path, PathBuf};

pub struct BatchOptions {
    pub template: PathBuf,
    pub input: PathBuf,
    pub out: PathBuf,
    /// The photos are the truth (y simulated) instead of real observations.
    pub simulate: bool,
    /// Photos with a longer side above this are shrunk first (with a note).
    pub max_side: usize,
    pub quiet: bool,
}

/// One photo's outcome, as `batch.md` lists it.
pub struct Row {
    pub photo: String,
    pub outcome: std::result::Result<output::Summary, String>,
    pub shape: [usize; 3],
    pub note: String,
}

/// The photos of a folder (png, jpg, jpeg), sorted by name; a single file is a batch of one.
pub fn photos(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(input).map_err(|e| Error::file(input, format!("cannot read: {e}")))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::file(input, "holds no .png, .jpg or .jpeg pictures"));
    }
    Ok(found)
}

/// Runs the batch on `device`; returns the rows (also written to OUT/batch.md).
pub fn run(opts: &BatchOptions, sel: &crate::backend::Selection) -> Result<Vec<Row>> {
    let template = Recipe::from_file(&opts.template)?;
    let base = opts
        .template
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let template = absolute_inputs(template, &base)?;
    let photos = photos(&opts.input)?;
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::file(&opts.out, format!("cannot create: {e}")))?;
    let mut rows = vec![];
    for (i, photo) in photos.iter().enumerate() {
        let stem = photo
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| format!("photo-{i}"));
        if !opts.quiet {
            eprintln!("[{}/{}] {}", i + 1, photos.len(), photo.display());
        }
        let dir = opts.out.join(&stem);
        let row = match restore_one(opts, &template, photo, &dir, sel) {
            Ok((summary, shape, note)) => Row {
                photo: photo.display().to_string(),
                outcome: Ok(summary),
                shape,
                note,
            },
            Err(e) => {
                if !opts.quiet {
                    eprintln!("  failed: {e}");
                }
                Row {
                    photo: photo.display().to_string(),
                    outcome: Err(e.to_string()),
                    shape: [0; 3],
                    note: String::new(),
                }
            }
        };
        rows.push(row);
        if crate::signals::interrupted() {
            break;
        }
    }
    let table = table(&rows, opts.simulate);
    let path = opts.out.join("batch.md");
    std::fs::write(&path, &table).map_err(|e| Error::file(&path, format!("cannot write: {e}")))?;
    if !opts.quiet {
        eprint!("{table}");
    }
    Ok(rows)
}

/// The template's file references made absolute, so each photo's recipe can live elsewhere.
fn absolute_inputs(mut r: Recipe, base: &Path) -> Result<Recipe> {
    let abs = |f: &str| -> String {
        let p = base.join(f);
        std::fs::canonicalize(&p).unwrap_or(p).display().to_string()
    };
    if let Some(f) = r.operator.file_mut() {
        *f = abs(f);
    }
    r.prior = match &r.prior {
        PriorSpec::Gmm(f) => PriorSpec::Gmm(abs(f)),
        PriorSpec::Model(f) if crate::models::is_bare_name(f) => PriorSpec::Model(f.clone()),
        PriorSpec::Model(f) => PriorSpec::Model(abs(f)),
    };
    Ok(r)
}

fn restore_one(
    opts: &BatchOptions,
    template: &Recipe,
    photo: &Path,
    dir: &Path,
    sel: &crate::backend::Selection,
) -> Result<(output::Summary, [usize; 3], String)> {
    let bytes = crate::files::read(photo, crate::files::MAX_DATA_BYTES)?;
    let c = template.shape.0;
    let factor = match template.operator {
        OperatorSpec::Downsample(f) => f.max(1),
        _ => 1,
    };
    // A simulated y needs x's size divisible by the factor; a real y does not.
    let multiple = if opts.simulate { factor } else { 1 };
    let (picture, mut note) = crate::photo::fit(&bytes, photo, c, opts.max_side, multiple)?;
    let [_, h, w] = picture.shape;
    let mut r = template.clone();
    if let (OperatorSpec::Jpeg { quality }, false) = (&mut r.operator, opts.simulate) {
        // A real JPEG is restored at the quality its own tables were saved with, at its own
        // size: shrunk, its 8×8 blocks would no longer be the file's.
        if !note.is_empty() {
            return Err(Error::file(
                photo,
                format!("a JPEG y must be restored at its own size, but it was {note}"),
            ));
        }
        if let Some((q, exact)) = crate::operators::jpeg::quality_of_file(&bytes) {
            *quality = q;
            note = format!(
                "JPEG quality {q} read from the file{}",
                if exact {
                    ""
                } else {
                    " (the nearest IJG tables)"
                }
            );
        }
    }
    let inputs = dir.join("input");
    output::check_target(dir, &[photo.to_path_buf(), opts.template.clone()])?;
    std::fs::create_dir_all(&inputs)
        .map_err(|e| Error::file(&inputs, format!("cannot create: {e}")))?;
    if opts.simulate {
        r.shape = (c, h, w);
        crate::npy::write(&inputs.join("truth.npy"), &picture.shape, &picture.data)?;
        r.measurement = MeasurementSpec::Simulate {
            truth: TruthSpec::Npy("truth.npy".into()),
            resize: false,
        };
    } else {
        r.shape = (c, h * factor, w * factor);
        let (y_shape, y) = match r.operator {
            // A photo to colourise: y is its grey (the channel mean, which is the operator's
            // own A, so a grey photo is y exactly and a colour one is made grey first).
            OperatorSpec::Grayscale => {
                let plane = h * w;
                let grey = (0..plane)
                    .map(|i| (0..c).map(|k| picture.data[k * plane + i]).sum::<f32>() / c as f32)
                    .collect();
                ([1, h, w], grey)
            }
            OperatorSpec::Matrix(_)
            | OperatorSpec::Abs(_)
            | OperatorSpec::PhaseRetrieval { .. } => {
                return Err(Error::file(photo, "this operator's y is not a picture"));
            }
            _ => (picture.shape, picture.data.clone()),
        };
        crate::npy::write(&inputs.join("y.npy"), &y_shape, &y)?;
        r.measurement = MeasurementSpec::Npy("y.npy".into());
    }
    let recipe_path = inputs.join("recipe.ron");
    std::fs::write(&recipe_path, r.to_ron()?)
        .map_err(|e| Error::file(&recipe_path, format!("cannot write: {e}")))?;
    let loaded = recipe::load(&recipe_path, &sel.device)?;
    let result = output::run(&loaded, &sel.description, RunOptions::default(), |_| {})?;
    output::write(&dir.join("result"), &loaded, &result)?;
    Ok((result.summary, loaded.recipe.shape(), note))
}

fn table(rows: &[Row], simulate: bool) -> String {
    let mut t = String::from(
        "| photo | restored at | sampler | seconds | residual | PSNR of the mean (dB) | note |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        match &r.outcome {
            Ok(s) => {
                let [c, h, w] = r.shape;
                let sampler = s
                    .sampler_detail
                    .as_deref()
                    .and_then(crate::samplers::auto::chosen_in)
                    .map_or(s.sampler.clone(), str::to_string);
                let psnr = match (simulate, s.psnr_mean) {
                    (true, Some(p)) => format!("{p:.2}"),
                    _ => "—".into(),
                };
                t.push_str(&format!(
                    "| {} | {c}×{h}×{w} | {sampler} | {:.1} | {:.2} | {psnr} | {} |\n",
                    r.photo, s.seconds, s.residual, r.note
                ));
            }
            Err(e) => t.push_str(&format!(
                "| {} | — | — | — | — | — | failed: {e} |\n",
                r.photo
            )),
        }
    }
    t
}
