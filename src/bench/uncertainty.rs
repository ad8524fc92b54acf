//! The uncertainty benchmarks: how long the posterior PCA and per-pixel intervals take, and how
//! well every sampler preset's intervals cover held-out truths (`bench --calibration`).

use crate::backend::Selection;
use crate::error::Result;
use crate::metrics;
use crate::operators::{Mask, Operator};
use crate::problem::Problem;
use crate::samplers;
use crate::tensor;
use std::sync::Arc;
use std::time::Instant;

/// Principal components and per-pixel intervals of 256 chains of a 3×256×256 image (random
/// draws: the cost does not depend on the values): the window's and `sample`'s analysis.
pub fn uncertainty_speed(quick: bool) -> Result<()> {
    let (chains, shape) = if quick {
        (64, [3usize, 64, 64])
    } else {
        (256, [3usize, 256, 256])
    };
    let d: usize = shape.iter().product();
    let mut rng = tensor::rng(5);
    let samples: Vec<f32> = (0..chains * d)
        .map(|_| tensor::gaussian(&mut rng) as f32)
        .collect();
    let truth: Vec<f32> = (0..d).map(|_| tensor::gaussian(&mut rng) as f32).collect();
    let t0 = Instant::now();
    let pca = crate::uncertainty::pca(&samples, chains, crate::uncertainty::DEFAULT_COMPONENTS)?;
    let t_pca = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let stats = crate::uncertainty::pixel_stats(&samples, chains, Some(&truth), None)?;
    let t_stats = t1.elapsed().as_secs_f64();
    println!(
        "\n# Uncertainty analysis ({chains} chains of {}x{}x{}, {} threads)\n",
        shape[0],
        shape[1],
        shape[2],
        rayon::current_num_threads()
    );
    println!("| work | seconds |\n|---|---|");
    println!(
        "| PCA, top {} directions (Gram {chains}x{chains}) | {t_pca:.3} |",
        pca.k()
    );
    println!("| per-pixel quantiles, coverage, z², CRPS | {t_stats:.3} |");
    // Keep the optimiser from dropping the work.
    std::hint::black_box((pca.variances.len(), stats.lower.len()));
    Ok(())
}

/// `posterior-lab bench --calibration`: every posterior sampler's preset on held-out
/// Fashion-MNIST images with the shipped prior, box inpainting and 2× super-resolution: PSNR of
/// the mean and how well the chains' intervals cover the truth (type-6 central intervals; 39
/// chains make every level's interval exact for a calibrated sampler).
pub fn calibration_table(
    sel: &Selection,
    chains: usize,
    images: usize,
    presets: Option<&str>,
) -> Result<()> {
    use crate::operators::Downsample;
    use crate::priors::NetworkPrior;
    use crate::uncertainty::{self, LEVELS};
    let root = super::source_root("bench --calibration")?;
    let device = &sel.device;
    let prior = Arc::new(NetworkPrior::load(
        &root.join("models/fashion-mnist"),
        None,
        device,
    )?);
    let set = crate::npy::read(&root.join("assets/heldout/fashion-t10k-last256.npy"))?;
    let shape = [1, 28, 28];
    let d = 784;
    let boxed = crate::npy::read(&root.join("assets/recipes/mask-box-28.npy"))?;
    let sigma_y = 0.05;
    let ops: Vec<(&str, Arc<dyn Operator>, &str)> = vec![
        (
            "box inpainting (14x14 hole), σ_y 0.05",
            Arc::new(Mask::from_array(shape, &[28, 28], boxed.data, device)?),
            "pixels in the hole",
        ),
        (
            "2x super-resolution, σ_y 0.05",
            Arc::new(Downsample::new(shape, 2)?),
            "all pixels",
        ),
    ];
    // The window's presets (posterior samplers), or the sampler lines asked for.
    let lines: Vec<String> = match presets {
        Some(list) => list
            .split(';')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => samplers::ALL
            .iter()
            .filter(|i| !matches!(i.name, "Prior" | "Exact"))
            .map(|i| i.preset.to_string())
            .collect(),
    };
    for line in &lines {
        samplers::parse(line).map_err(|e| crate::Error::invalid(line, e))?;
    }
    // Spread over the held-out set (its last 256 test images), never trained on.
    let picks: Vec<usize> = (0..images).map(|i| (i * 61 + 7) % 256).collect();
    println!(
        "<!-- Regenerate: cargo run --release -- bench --calibration --chains {chains} --images {images}{} [--device 0] -->",
        presets.map_or(String::new(), |p| format!(" --presets \"{p}\""))
    );
    println!(
        "# Calibration of every sampler preset ({chains} chains, {images} held-out Fashion-MNIST images, {})\n",
        sel.description
    );
    println!(
        "Coverage = fraction of pixels whose truth lies in the chains' central interval of that level \
         (a calibrated sampler: the level itself); z² = mean (truth − mean)² / predictive variance \
         (1 calibrated, > 1 over-confident, < 1 under-confident); CRPS in data units (range [-1, 1]); \
         averaged over the images. With 39 chains every level's type-6 interval covers a calibrated \
         sampler's truth at exactly its level, so the columns can be read against 0.50/0.80/0.90/0.95."
    );
    for (name, op, region) in &ops {
        println!("\n## {name} (figures over {region})\n");
        println!(
            "| sampler | NFE/chain | PSNR of mean (dB) | 50% | 80% | 90% | 95% | z² | CRPS | seconds |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let problems: Vec<(Problem, Vec<f32>)> = picks
            .iter()
            .map(|&i| {
                let img = set.data[i * d..(i + 1) * d].to_vec();
                let clean = op.forward(tensor::from_vec(img.clone(), [1, 1, 28, 28], device));
                let noise = tensor::normal(&mut tensor::rng(900 + i as u64), clean.dims(), device);
                let y = clean + noise.mul_scalar(sigma_y);
                Ok((
                    Problem::new(prior.clone(), op.clone(), y, sigma_y, device.clone())?,
                    img,
                ))
            })
            .collect::<Result<_>>()?;
        let (_, seen) =
            crate::operators::display_measurement(op.as_ref(), problems[0].0.y.clone())?;
        for line in &lines {
            let spec = samplers::parse(line).map_err(|e| crate::Error::invalid(line, e))?;
            let (mut psnr, mut cov, mut z2, mut crps, mut secs, mut nfe) =
                (0.0, [0.0; LEVELS.len()], 0.0, 0.0, 0.0, 0);
            for (k, (problem, img)) in problems.iter().enumerate() {
                let t0 = Instant::now();
                let mut s = samplers::build(&spec, problem, chains, 17 + k as u64)?;
                samplers::run(s.as_mut(), problem, |_| {})?;
                let out = tensor::to_vec(&s.samples())?;
                secs += t0.elapsed().as_secs_f64();
                nfe = s.state().nfe;
                let (mean, _) = metrics::mean_variance(&out, chains);
                psnr += metrics::psnr(&mean, img);
                let stats = uncertainty::pixel_stats(&out, chains, Some(img), Some(&seen))?;
                if let Some(c) = stats.calibration {
                    let r = c.unseen.as_ref().unwrap_or(&c.all);
                    for (l, (_, f)) in r.coverage.iter().enumerate() {
                        cov[l] += f;
                    }
                    z2 += r.z2.unwrap_or(f64::NAN);
                    crps += r.crps;
                }
            }
            let n = problems.len() as f64;
            println!(
                "| {} | {nfe} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.4} | {:.1} |",
                line,
                psnr / n,
                cov[0] / n,
                cov[1] / n,
                cov[2] / n,
                cov[3] / n,
                z2 / n,
                crps / n,
                secs / n
            );
        }
    }
    Ok(())
}
