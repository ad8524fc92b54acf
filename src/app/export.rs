//! Export of a run from the window: PNGs, `.npy` arrays, and the recipe with its inputs, so that
//! `posterior-lab sample --recipe DIR/recipe.ron` reproduces the run.

use crate::engine::Snapshot;
use crate::error::{Error, Result};
use crate::image_io;
use crate::npy;
use crate::priors::PriorSpec;
use crate::recipe::{MeasurementSpec, Recipe, TruthSpec};
use std::path::{Path, PathBuf};

/// Input files a recipe names, copied next to the exported recipe; absolute prior paths.
fn portable_recipe(recipe: &Recipe, base: &Path, dir: &Path) -> Result<(Recipe, Vec<PathBuf>)> {
    let mut r = recipe.clone();
    let mut files = vec![];
    let mut copy = |name: &str| -> Result<String> {
        let src = base.join(name);
        let file = Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_else(|| name.to_string());
        let dst = dir.join(format!("input-{file}"));
        std::fs::copy(&src, &dst)
            .map_err(|e| Error::file(&src, format!("cannot copy for export: {e}")))?;
        files.push(dst);
        Ok(format!("input-{file}"))
    };
    if let Some(f) = r.operator.file_mut() {
        *f = copy(f)?;
    }
    match &mut r.measurement {
        MeasurementSpec::Npy(f) => *f = copy(f)?,
        MeasurementSpec::Simulate { truth, .. } => match truth {
            TruthSpec::Npy(f) | TruthSpec::Image(f) => *f = copy(f)?,
        },
    }
    let absolute = |f: &str| -> String {
        let p = base.join(f);
        std::fs::canonicalize(&p).unwrap_or(p).display().to_string()
    };
    r.prior = match &r.prior {
        PriorSpec::Gmm(f) => PriorSpec::Gmm(copy(f)?),
        PriorSpec::Model(f) => {
            let path = absolute(f);
            if Path::new(&path).starts_with(std::env::temp_dir()) {
                // The model embedded in the binary lives in the window's session folder, which
                // goes away with the window: ship a copy with the export.
                let dst = dir.join("model");
                std::fs::create_dir_all(&dst)
                    .map_err(|e| Error::file(&dst, format!("cannot create: {e}")))?;
                for name in ["card.ron", "model.bpk"] {
                    let src = Path::new(&path).join(name);
                    std::fs::copy(&src, dst.join(name))
                        .map_err(|e| Error::file(&src, format!("cannot copy for export: {e}")))?;
                }
                files.push(dst);
                PriorSpec::Model("model".into())
            } else {
                PriorSpec::Model(path)
            }
        }
    };
    Ok((r, files))
}

/// Writes the export; returns the files written.
pub fn write(dir: &Path, recipe: &Recipe, base: &Path, snap: &Snapshot) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    let (portable, mut files) = portable_recipe(recipe, base, dir)?;
    let shape = snap.shape;
    let [c, h, w] = shape;
    let d = c * h * w;
    let shown = snap.x0_hat.len() / d.max(1);
    let mut put = |name: &str, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        let p = dir.join(name);
        f(&p)?;
        files.push(p);
        Ok(())
    };
    put("recipe.ron", &|p| {
        std::fs::write(p, portable.to_ron()?)
            .map_err(|e| Error::file(p, format!("cannot write: {e}")))
    })?;
    put("mean.npy", &|p| npy::write(p, &[c, h, w], &snap.mean))?;
    put("variance.npy", &|p| {
        npy::write(p, &[c, h, w], &snap.variance)
    })?;
    put("chains.npy", &|p| {
        npy::write(p, &[shown, c, h, w], &snap.x0_hat)
    })?;
    // The uncertainty figures of the newest frame that has them (same names as `sample`).
    if let Some(u) = snap.uncertainty.as_ref().filter(|u| u.mean.len() == d) {
        let k = u.pca.k();
        put("pca.npy", &|p| {
            npy::write(p, &[k, c, h, w], &u.pca.components)
        })?;
        let var: Vec<f32> = u.pca.variances.iter().map(|v| *v as f32).collect();
        put("pca_variance.npy", &|p| npy::write(p, &[k], &var))?;
        let q = [u.stats.lower.as_slice(), u.stats.upper.as_slice()].concat();
        put("quantiles.npy", &|p| npy::write(p, &[2, c, h, w], &q))?;
    }
    if c == 1 || c == 3 {
        put("mean.png", &|p| {
            image_io::save_png(&image_io::to_rgb(&snap.mean, shape), p)
        })?;
        put("variance.png", &|p| {
            image_io::save_png(&image_io::variance_map(&snap.variance, shape).0, p)
        })?;
        put("chains.png", &|p| {
            image_io::save_png(&image_io::grid(&snap.x0_hat, shown, shape, 16), p)
        })?;
        if let Some(inputs) = &snap.inputs {
            put("y.png", &|p| {
                image_io::save_png(&image_io::to_rgb(&inputs.y_view, shape), p)
            })?;
            if let Some(t) = &inputs.truth {
                put("truth.png", &|p| {
                    image_io::save_png(&image_io::to_rgb(t, shape), p)
                })?;
            }
        }
    }
    let note = format!(
        "Exported from the Posterior Lab window at step {}/{} ({} chains, {} shown in chains.npy).\n\
         Reproduce with: posterior-lab sample --recipe recipe.ron --out result\n",
        snap.step, snap.total_steps, snap.chains, shown
    );
    put("README.txt", &|p| {
        std::fs::write(p, &note).map_err(|e| Error::file(p, format!("cannot write: {e}")))
    })?;
    Ok(files)
}

/// `chosen` with a `.png` extension, or, when that file exists, the first free `name-N.png`
/// beside it.
pub fn free_png_path(chosen: &Path) -> PathBuf {
    let png = chosen.with_extension("png");
    if !png.exists() {
        return png;
    }
    let stem = png
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "result".into());
    (1..)
        .map(|n| png.with_file_name(format!("{stem}-{n}.png")))
        .find(|p| !p.exists())
        .unwrap_or(png)
}
