//! `posterior-lab bench --nonlinear`: the measurements beyond linear-Gaussian where the truth
//! is known exactly or the papers report figures. (1) The plane: a bimodal mixture seen
//! through a magnitude |a·x| and through photon counts of a clipped x, every sampler preset
//! against the grid posterior with the linear scenes' test (sliced Wasserstein and mode
//! weights beside the spread between exact sets of the same size). (2) Fashion-MNIST phase
//! retrieval: DPS and DAPS on held-out images, the mean's PSNR and that of the chain with the
//! smallest residual (never picked by the truth).

use crate::error::{Error, Result};
use crate::metrics::{psnr, sliced_wasserstein};
use crate::noise_model::NoiseModel;
use crate::operators::{Abs, Clip, MatrixOp, Operator, PhaseRetrieval};
use crate::priors::{Denoiser, Gmm, GmmDenoiser, NetworkPrior};
use crate::problem::Problem;
use crate::samplers::{self, grid_posterior::GridPosterior};
use crate::tensor;
use crate::testbeds::Floor;
use burn::tensor::Device;
use std::sync::Arc;
use std::time::Instant;

/// A plane scene: its name, operator, y and noise.
struct PlaneScene {
    name: &'static str,
    op: Arc<dyn Operator>,
    y: Vec<f32>,
    noise: (NoiseModel, f64),
}

fn plane_scenes(device: &Device) -> Result<Vec<PlaneScene>> {
    let projection = MatrixOp::from_array([1, 1, 2], &[1, 2], vec![0.6, -0.8], device)?;
    Ok(vec![
        PlaneScene {
            name: "bimodal prior, y = |0.6 x1 − 0.8 x2| = 0.9, σ_y 0.25",
            op: Arc::new(Abs::new(Box::new(projection))?),
            y: vec![0.9],
            noise: (NoiseModel::Gaussian, 0.25),
        },
        PlaneScene {
            name: "bimodal prior, photon counts of clip(1.5 x) (peak 8), y = (−0.5, 0.75)",
            op: Arc::new(Clip::new([1, 1, 2], 1.5)?),
            y: vec![-0.5, 0.75],
            noise: (NoiseModel::Poisson { peak: 8.0 }, 0.0),
        },
    ])
}

fn rows(points: &[[f64; 2]]) -> Vec<Vec<f64>> {
    points.iter().map(|p| p.to_vec()).collect()
}

fn mode_error(gmm: &Gmm, weights: &[f64], samples: &[Vec<f64>]) -> f64 {
    let f = crate::metrics::mode_frequencies(gmm, samples);
    0.5 * f
        .iter()
        .zip(weights)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
}

/// The plane table: every preset on every scene with `particles` particles.
pub fn plane_table(particles: usize) -> Result<()> {
    let device = Device::flex();
    let gmm = crate::lab::examples::bimodal().prior()?;
    let prior: Arc<dyn Denoiser> = Arc::new(GmmDenoiser::new(gmm.clone(), [1, 1, 2], &device)?);
    println!("# The plane beyond linear-Gaussian ({particles} particles, CPU backend)\n");
    println!(
        "SW = sliced Wasserstein-1 of the final particles to samples of the grid posterior \
         (1024² cells; mean over 64 directions); mode = total variation of the mode weights \
         (each point to its most responsible prior component). \"exact\" is the mean ± sd of \
         the same figure between 20 sets of grid samples of the same size.\n"
    );
    for scene in plane_scenes(&device)? {
        let [c, h, w] = scene.op.output_shape();
        let y = tensor::from_vec(scene.y.clone(), [1, c, h, w], &device);
        let problem = Problem::with_noise(
            prior.clone(),
            scene.op.clone(),
            y,
            scene.noise,
            device.clone(),
        )?;
        let grid = GridPosterior::new(&problem, &gmm, 1024)?;
        let weights = grid.mode_weights(&gmm);
        let mut rng = tensor::rng(17);
        let reference = rows(&grid.sample(particles, &mut rng));
        let (mut sws, mut modes) = (vec![], vec![]);
        for _ in 0..20 {
            let s = rows(&grid.sample(particles, &mut rng));
            sws.push(sliced_wasserstein(&s, &reference, 64, &mut rng));
            modes.push(mode_error(&gmm, &weights, &s));
        }
        let stats = |values| {
            let f = Floor { values };
            (f.mean(), f.std())
        };
        let (swf, modef) = (stats(sws), stats(modes));
        println!("## {}\n", scene.name);
        println!("Grid posterior's mode weights: {weights:.3?}.\n");
        println!("| preset | SW | mode error | seconds |");
        println!("|---|---|---|---|");
        for info in samplers::ALL {
            let spec = samplers::parse(info.preset)
                .map_err(|e| Error::invalid("preset", format!("{}: {e}", info.preset)))?;
            let t0 = Instant::now();
            let mut s = match samplers::build(&spec, &problem, particles, 7) {
                Ok(s) => s,
                Err(e) => {
                    println!("| `{}` | refuses: {e} | | |", info.preset);
                    continue;
                }
            };
            samplers::run(s.as_mut(), &problem, |_| {})?;
            let out = tensor::rows_f64(&tensor::to_vec(&s.samples())?, particles);
            println!(
                "| `{}` | {:.3} (exact {:.3} ± {:.3}) | {:.3} (exact {:.3} ± {:.3}) | {:.2} |",
                info.preset,
                sliced_wasserstein(&out, &reference, 64, &mut rng),
                swf.0,
                swf.1,
                mode_error(&gmm, &weights, &out),
                modef.0,
                modef.1,
                t0.elapsed().as_secs_f64()
            );
        }
        println!();
    }
    Ok(())
}

/// Fashion-MNIST phase retrieval (oversample 2, σ_y 0.05) on `images` held-out images with
/// `chains` chains per sampler line.
pub fn phase_retrieval_table(images: usize, chains: usize, lines: &[&str]) -> Result<()> {
    let root = crate::bench::source_root("bench --nonlinear")?;
    let device = Device::flex();
    let prior: Arc<dyn Denoiser> = Arc::new(NetworkPrior::load(
        &root.join("models/fashion-mnist"),
        None,
        &device,
    )?);
    let set = crate::npy::read(&root.join("assets/heldout/fashion-t10k-last256.npy"))?;
    let shape = [1, 28, 28];
    let op: Arc<dyn Operator> = Arc::new(PhaseRetrieval::new(shape, 2.0, &device)?);
    let sigma = 0.05;
    println!(
        "# Fashion-MNIST phase retrieval (oversample 2, σ_y {sigma}; {images} held-out images, \
         {chains} chains, prior fashion-mnist, CPU)\n"
    );
    println!(
        "PSNR (dB) averaged over the images: of the mean of the chains; of the chain with the \
         smallest residual ‖y − A(x)‖ (chosen without the truth); of the best chain by the truth \
         (what the papers report as best-of-several-runs: an oracle, for comparison only).\n"
    );
    println!("| sampler | mean | residual-selected chain | oracle best chain | seconds/image |");
    println!("|---|---|---|---|---|");
    for line in lines {
        let spec = samplers::parse(line).map_err(|e| Error::invalid("sampler", e))?;
        let (mut pm, mut ps, mut po, mut secs) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..images {
            let truth: Vec<f32> = set.data[i * 784..(i + 1) * 784].to_vec();
            let x = tensor::from_vec(truth.clone(), [1, 1, 28, 28], &device);
            let noise = (NoiseModel::Gaussian, sigma);
            let y = crate::recipe::simulate_measurement(op.as_ref(), x, noise, i as u64)?;
            let problem = Problem::with_noise(prior.clone(), op.clone(), y, noise, device.clone())?;
            let t0 = Instant::now();
            let mut s = samplers::build(&spec, &problem, chains, 3)?;
            samplers::run(s.as_mut(), &problem, |_| {})?;
            secs += t0.elapsed().as_secs_f64();
            let samples = s.samples();
            let out = tensor::to_vec(&samples)?;
            let (mean, _) = crate::metrics::mean_variance(&out, chains);
            pm += psnr(&mean, &truth);
            let residuals = problem.normalized_residuals(&samples)?;
            let chain = |k: usize| &out[k * 784..(k + 1) * 784];
            let chosen = (0..chains)
                .min_by(|a, b| residuals[*a].total_cmp(&residuals[*b]))
                .unwrap_or(0);
            ps += psnr(chain(chosen), &truth);
            po += (0..chains)
                .map(|k| psnr(chain(k), &truth))
                .fold(f64::NEG_INFINITY, f64::max);
        }
        let n = images.max(1) as f64;
        println!(
            "| `{line}` | {:.2} | {:.2} | {:.2} | {:.1} |",
            pm / n,
            ps / n,
            po / n,
            secs / n
        );
    }
    Ok(())
}
