//! `posterior-lab bench`: throughput figures on each backend, printed as a table.
//!
//! Measures the exact Gaussian-mixture denoiser (evaluations per second at 1 and 256 chains)
//! and the time per step of every sampler on a Gaussian-mixture inpainting problem.

pub mod checkpoint;
mod cli;
mod degradation;
mod lab;
mod network;
mod nonlinear;
mod photo;
mod training;
mod uncertainty;

pub use cli::{BenchArgs, run_cli};
pub use degradation::Degradation;
pub use lab::{LabRow, lab_rows, lab_table};
pub use network::{NetworkFigure, network_table};
pub use photo::{photo_table, tiles_table};
pub use uncertainty::{calibration_table, uncertainty_speed};

use crate::backend::Selection;
use crate::error::Result;
use crate::linalg::Mat;
use crate::metrics;
use crate::operators::{Mask, Operator};
use crate::priors::{Denoiser, Gmm, GmmDenoiser};
use crate::problem::Problem;
use crate::samplers::{self, AldParams, DpsParams, PriorParams, SamplerSpec, Solver};
use crate::tensor;
use std::sync::Arc;
use std::time::Instant;

/// A reproducible 8×8 test mixture: `k` components with full covariances.
/// The source tree (the working directory or the build's), where the held-out sets and the
/// shipped models are; `what` names the command in the message when it is not found.
pub fn source_root(what: &str) -> Result<std::path::PathBuf> {
    [
        std::env::current_dir().unwrap_or_default(),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ]
    .into_iter()
    .find(|r| r.join("assets/heldout/fashion-t10k-last256.npy").is_file())
    .ok_or_else(|| {
        crate::Error::invalid(
            what,
            "needs the source tree (models/fashion-mnist, assets/heldout): run it from there",
        )
    })
}

pub fn bench_gmm(k: usize, shape: [usize; 3], seed: u64) -> Gmm {
    let d: usize = shape.iter().product();
    let mut rng = tensor::rng(seed);
    let mut means = vec![];
    let mut covs = vec![];
    for _ in 0..k {
        means.push(
            tensor::gaussian_vec(&mut rng, d)
                .into_iter()
                .map(|v| 0.6 * v)
                .collect(),
        );
        let b = Mat::from_rows(
            d,
            d,
            tensor::gaussian_vec(&mut rng, d * d)
                .into_iter()
                .map(|v| v * 0.25 / (d as f64).sqrt())
                .collect(),
        );
        covs.push(b.matmul(&b.transpose()).add_diag(0.01));
    }
    let raw: Vec<f64> = (0..k).map(|i| 1.0 + i as f64).collect();
    let total: f64 = raw.iter().sum();
    Gmm::new(raw.into_iter().map(|w| w / total).collect(), means, covs)
        .expect("bench mixture is valid by construction")
}

fn time_denoiser(
    prior: &dyn Denoiser,
    chains: usize,
    iters: usize,
    sel: &Selection,
) -> Result<f64> {
    let [c, h, w] = prior.shape();
    let mut rng = tensor::rng(1);
    let x = tensor::normal(&mut rng, [chains, c, h, w], &sel.device);
    tensor::to_vec(&prior.denoise(x.clone(), 0.5))?; // warm-up (kernel compilation on wgpu)
    let start = Instant::now();
    let mut last = None;
    for i in 0..iters {
        last = Some(prior.denoise(x.clone(), 0.1 + i as f64 * 1e-3));
    }
    if let Some(t) = last {
        tensor::to_vec(&t)?;
    }
    Ok(iters as f64 / start.elapsed().as_secs_f64())
}

/// One backend's figures, printed as they come.
pub fn run_backend(sel: &Selection, quick: bool) -> Result<()> {
    let shape = [1, 8, 8];
    let gmm = bench_gmm(8, shape, 3);
    let prior = Arc::new(GmmDenoiser::new(gmm, shape, &sel.device)?);
    println!("== {} ==", sel.description);
    let iters = if quick { 5 } else { 50 };
    for chains in [1, 256] {
        let rate = time_denoiser(prior.as_ref(), chains, iters, sel)?;
        println!(
            "gmm denoiser (d=64, K=8, full cov)  chains={chains:<4} {rate:>10.1} evals/s  {:>12.0} chain-evals/s",
            rate * chains as f64
        );
    }

    let mut mask = vec![1.0f32; 64];
    mask.iter_mut().skip(16).take(24).for_each(|v| *v = 0.0);
    let op: Arc<dyn Operator> = Arc::new(Mask::from_array(shape, &[8, 8], mask, &sel.device)?);
    let mut rng = tensor::rng(5);
    let y = tensor::normal(&mut rng, [1, 1, 8, 8], &sel.device).mul_scalar(0.5);
    let problem = Problem::new(prior, op, y, 0.05, sel.device.clone())?;
    let steps = if quick { 4 } else { 40 };
    let specs = [
        SamplerSpec::Exact,
        SamplerSpec::Prior(PriorParams {
            steps,
            solver: Solver::Heun,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
            distilled: false,
        }),
        SamplerSpec::Dps(DpsParams {
            steps,
            zeta: Some(1.0),
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
        }),
        SamplerSpec::Ald(AldParams {
            steps,
            inner: 1,
            eps: None,
            sigma_min: 0.01,
            sigma_max: 50.0,
            final_denoise: true,
        }),
        SamplerSpec::Almc(crate::samplers::AlmcParams {
            steps,
            warmup: 0,
            t_max: 5.0,
            tau: crate::schedule::ou_time_from_sigma(0.01),
            delta: None,
            kappa: None,
            precondition: true,
            final_denoise: true,
        }),
        SamplerSpec::Eps(crate::samplers::EpsParams {
            steps,
            mode: crate::samplers::EpsMode::Auto,
            solver: Solver::Euler,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
            warm: None,
        }),
        SamplerSpec::DiffPir(crate::samplers::DiffPirParams {
            steps,
            lambda: 1.0,
            zeta: 0.5,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
            warm: None,
        }),
        SamplerSpec::PiGdm(crate::samplers::PiGdmParams {
            steps,
            eta: 1.0,
            weight: 1.0,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
        }),
        SamplerSpec::Ddrm(crate::samplers::DdrmParams {
            steps,
            eta: 0.85,
            eta_b: 1.0,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
            warm: None,
            whole_picture: false,
        }),
        SamplerSpec::Daps(crate::samplers::DapsParams {
            steps: steps.div_ceil(5),
            ode_steps: 5,
            langevin_steps: 20,
            lr: 0.5,
            sigma_min: 0.1,
            sigma_max: None,
            rho: 7.0,
        }),
    ];
    for chains in [16, 256] {
        for spec in &specs {
            // A first full run compiles kernels (wgpu) and warms caches; the second is timed,
            // set-up included (for `Exact` that is the whole cost: one step draws every chain).
            for timed in [false, true] {
                let start = Instant::now();
                let mut s = samplers::build(spec, &problem, chains, 0)?;
                samplers::run(s.as_mut(), &problem, |_| {})?;
                tensor::to_vec(&s.state().x)?;
                if timed {
                    let st = s.state();
                    let per = start.elapsed().as_secs_f64() * 1e3 / st.total_steps as f64;
                    println!(
                        "sampler {:<8} chains={chains:<4} {per:>9.2} ms/step  ({} steps, {} nfe/chain)",
                        spec.name(),
                        st.total_steps,
                        st.nfe
                    );
                }
            }
        }
    }
    // Noise-space Langevin's selling point: after its warm-up every further Langevin step is a
    // new posterior sample, whereas DPS pays a full reverse run per sample.
    let chains = 16;
    let dps_steps = if quick { 10 } else { 200 };
    let dps = SamplerSpec::Dps(DpsParams {
        steps: dps_steps,
        zeta: Some(0.3),
        sigma_min: None,
        sigma_max: None,
        rho: 7.0,
    });
    let start = Instant::now();
    let mut s = samplers::build(&dps, &problem, chains, 0)?;
    samplers::run(s.as_mut(), &problem, |_| {})?;
    tensor::to_vec(&s.state().x)?;
    let dps_ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "cost per posterior sample: Dps({dps_steps}) {dps_ms:.1} ms and {} nfe per sample per chain (one sample per run)",
        s.state().nfe
    );
    let (warmup, steps) = if quick { (4, 4) } else { (100, 100) };
    let cps = SamplerSpec::NoiseSpaceLangevin(crate::samplers::CpsParams {
        steps,
        warmup,
        warmup_lr: 0.005,
        generator_steps: 8,
        generator: crate::samplers::GeneratorChoice::Auto,
        step: None,
        drift: crate::samplers::Drift::Paper,
        clamp: false,
        warm: None,
    });
    let mut s = samplers::build(&cps, &problem, chains, 0)?;
    let start = Instant::now();
    for _ in 0..warmup {
        s.step(&problem)?;
    }
    tensor::to_vec(&s.state().x)?;
    let warm_ms = start.elapsed().as_secs_f64() * 1e3;
    let nfe_warm = s.state().nfe;
    let start = Instant::now();
    while !s.is_done() {
        s.step(&problem)?;
    }
    tensor::to_vec(&s.state().x)?;
    let per_ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let per_nfe = (s.state().nfe - nfe_warm) as f64 / steps as f64;
    println!(
        "cost per posterior sample: NoiseSpaceLangevin warm-up {warm_ms:.1} ms ({nfe_warm} nfe), then {per_ms:.2} ms and {per_nfe:.0} nfe per additional sample per chain"
    );
    Ok(())
}

/// Network denoiser speed (NFE/s at batch 1 and 16, 28×28 and 64×64) and training steps per
/// second, for the shipped network's architecture (fresh weights: speed does not depend on them).
pub fn network_speed(sel: &Selection, quick: bool) -> Result<()> {
    use crate::priors::unet::{EdmUNet, UNetConfig};
    use burn::module::Module;
    let cfg = UNetConfig {
        base_channels: 16,
        channel_mult: vec![1, 2, 4],
        ..UNetConfig::default()
    };
    // As priors are loaded for sampling (the CPU path on flex; nothing changes on wgpu).
    let model = EdmUNet::new(&cfg, &sel.device).with_cpu_inference(&sel.device);
    println!(
        "network denoiser: U-Net {} parameters (the fashion-mnist architecture)",
        model.num_params()
    );
    let iters = if quick { 2 } else { 10 };
    for side in [28usize, 64] {
        for batch in [1usize, 16] {
            let mut rng = tensor::rng(2);
            let x = tensor::normal(&mut rng, [batch, 1, side, side], &sel.device);
            let s = burn::tensor::Tensor::<1>::full([batch], 0.5, &sel.device);
            tensor::to_vec(&model.denoise(x.clone(), None, s.clone()))?; // warm-up
            let start = Instant::now();
            for _ in 0..iters {
                tensor::to_vec(&model.denoise(x.clone(), None, s.clone()))?;
            }
            let rate = iters as f64 / start.elapsed().as_secs_f64();
            println!(
                "network denoiser {side}x{side} batch {batch:<3} {rate:>8.1} NFE/s  {:>9.1} image-NFE/s",
                rate * batch as f64
            );
        }
    }
    // Training steps (forward + backward + Adam) at batch 32, 28×28: the trainer's path (the
    // CPU U-Net on flex, burn's autodiff elsewhere).
    let dev = &sel.device;
    let mut model = EdmUNet::new(&cfg, dev)
        .to_device(&dev.clone().autodiff())
        .train();
    let mut optim = burn::optim::AdamConfig::new().init();
    let steps = if quick { 2 } else { 10 };
    let mut rng = tensor::rng(3);
    let mut start = Instant::now();
    for i in 0..=steps {
        if i == 1 {
            start = Instant::now(); // the first step compiles kernels on wgpu
        }
        let x0 = tensor::normal(&mut rng, [32, 1, 28, 28], dev).mul_scalar(0.5);
        let sigma: Vec<f64> = (0..32).map(|k| 0.01 * 1.3f64.powi(k)).collect();
        let noise = tensor::normal(&mut rng, [32, 1, 28, 28], dev);
        let sb = crate::train::step::StepBatch {
            x: x0.clone() + noise * tensor::from_f64(&sigma, [32, 1, 1, 1], dev),
            cond: None,
            sigma,
            target: x0,
            denoised: false,
        };
        let (_, grads) = crate::train::step::gradients(&model, &sb, dev)?;
        model = optim.step(1e-4, model, grads);
    }
    let rate = steps as f64 / start.elapsed().as_secs_f64();
    println!("training (batch 32, 28x28, fwd + bwd + Adam) {rate:>8.2} steps/s");
    Ok(())
}

/// `posterior-lab bench --table`: every sampler on the exact mixture beds, by sliced
/// Wasserstein distance and mode-weight error against exact posterior samples, next to the
/// spread of those figures over exact sets of the same size; and EPS against DPS by NFE.
pub fn accuracy_table(sel: &Selection, chains: usize) -> Result<()> {
    use crate::samplers::{
        AlmcParams, CpsParams, DapsParams, DdrmParams, DiffPirParams, Drift, EpsMode, EpsParams,
        PiGdmParams,
    };
    use crate::testbeds;
    let beds = [testbeds::bimodal_bed(), testbeds::mcg_bed(3)];
    println!(
        "# Samplers on exact Gaussian-mixture beds ({chains} chains, {})",
        sel.description
    );
    println!(
        "SW = sliced Wasserstein-1 (mean over 100 directions) to 4x{chains} exact posterior samples;"
    );
    println!(
        "mode = total variation between the samples' mode frequencies and the exact posterior weights."
    );
    for bed in &beds {
        let problem = bed.problem(&sel.device);
        let reference = bed.posterior.sample(4 * chains, &mut tensor::rng(777)).0;
        let (sw_floor, mode_floor) =
            testbeds::calibrate(&bed.posterior, &reference, chains, 20, &mut tensor::rng(99));
        println!("\n## {}\n", bed.name);
        println!(
            "exact floor (20 exact sets): SW {:.4} ± {:.4} (max {:.4}), mode {:.4} ± {:.4}\n",
            sw_floor.mean(),
            sw_floor.std(),
            sw_floor.max(),
            mode_floor.mean(),
            mode_floor.std()
        );
        println!("| sampler | NFE/chain | SW | mode err | seconds |");
        println!("|---|---|---|---|---|");
        let eps = |steps, solver| {
            SamplerSpec::Eps(EpsParams {
                steps,
                mode: EpsMode::Exact,
                solver,
                sigma_min: None,
                sigma_max: None,
                rho: 7.0,
                warm: None,
            })
        };
        let dps = |steps| {
            SamplerSpec::Dps(DpsParams {
                steps,
                zeta: Some(0.3),
                sigma_min: None,
                sigma_max: None,
                rho: 7.0,
            })
        };
        let mut specs = vec![SamplerSpec::Exact];
        specs.extend([1, 5, 10, 20, 50, 100].map(|n| eps(n, Solver::Euler)));
        specs.extend([5, 10, 20, 50].map(|n| eps(n, Solver::Heun)));
        specs.extend([20, 50, 100, 200, 500, 1000].map(dps));
        specs.push(SamplerSpec::Ald(AldParams {
            steps: 200,
            inner: 5,
            eps: None,
            sigma_min: 0.01,
            sigma_max: 30.0,
            final_denoise: true,
        }));
        // Both forms, same target path (T = 5 for the beds' scale, τ at σ = 0.01): the plain
        // Langevin with its default δ, and the preconditioned one with an explicit δ (its
        // default, 1 − e^{−2τ}, assumes images near a low-dimensional set, not these mixtures).
        for (precondition, delta) in [(false, None), (true, Some(0.005))] {
            specs.push(SamplerSpec::Almc(AlmcParams {
                steps: 2000,
                warmup: 200,
                t_max: 5.0,
                tau: crate::schedule::ou_time_from_sigma(0.01),
                delta,
                kappa: None,
                precondition,
                final_denoise: true,
            }));
        }
        specs.push(SamplerSpec::DiffPir(DiffPirParams {
            steps: 100,
            lambda: 1.0,
            zeta: 0.5,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
            warm: None,
        }));
        specs.push(SamplerSpec::PiGdm(PiGdmParams {
            steps: 100,
            eta: 1.0,
            weight: 1.0,
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
        }));
        for steps in [20, 100] {
            specs.push(SamplerSpec::Ddrm(DdrmParams {
                steps,
                eta: 0.85,
                eta_b: 1.0,
                sigma_min: None,
                sigma_max: None,
                rho: 7.0,
                warm: None,
                whole_picture: false,
            }));
        }
        specs.push(SamplerSpec::Daps(DapsParams {
            steps: 50,
            ode_steps: 5,
            langevin_steps: 50,
            lr: 0.5,
            sigma_min: 0.1,
            sigma_max: None,
            rho: 7.0,
        }));
        for drift in [Drift::Paper, Drift::Code] {
            specs.push(SamplerSpec::NoiseSpaceLangevin(CpsParams {
                steps: 200,
                warmup: 200,
                warmup_lr: 0.005,
                generator_steps: 8,
                generator: crate::samplers::GeneratorChoice::Auto,
                step: None,
                drift,
                clamp: false,
                warm: None,
            }));
        }
        for spec in &specs {
            let start = Instant::now();
            let mut s = samplers::build(spec, &problem, chains, 11)?;
            samplers::run(s.as_mut(), &problem, |_| {})?;
            let out = tensor::rows_f64(&tensor::to_vec(&s.samples())?, chains);
            let secs = start.elapsed().as_secs_f64();
            let sw = testbeds::sw(&out, &reference, 1);
            let mode = metrics::mode_weight_error(&bed.posterior, &out);
            println!(
                "| {} | {} | {sw:.4} | {mode:.4} | {secs:.2} |",
                describe(spec),
                s.state().nfe
            );
        }
    }
    Ok(())
}

fn describe(spec: &SamplerSpec) -> String {
    match spec {
        SamplerSpec::Eps(p) => format!("Eps({}, {:?}, {:?})", p.steps, p.mode, p.solver),
        SamplerSpec::Dps(p) => match p.zeta {
            Some(z) => format!("Dps({}, zeta {z})", p.steps),
            None => format!("Dps({})", p.steps),
        },
        SamplerSpec::Ald(p) => format!("Ald({}x{})", p.steps, p.inner),
        SamplerSpec::Almc(p) => match (p.precondition, p.delta) {
            (true, Some(d)) => format!(
                "Almc({} + warm-up {}, preconditioned, δ {d})",
                p.steps, p.warmup
            ),
            (true, None) => format!("Almc({} + warm-up {}, preconditioned)", p.steps, p.warmup),
            (false, _) => format!("Almc({} + warm-up {}, plain)", p.steps, p.warmup),
        },
        SamplerSpec::NoiseSpaceLangevin(p) => format!(
            "NoiseSpaceLangevin({} + warm-up {}, {:?} drift)",
            p.steps, p.warmup, p.drift
        ),
        SamplerSpec::Daps(p) => format!(
            "Daps({}x{} ode, {} langevin)",
            p.steps, p.ode_steps, p.langevin_steps
        ),
        SamplerSpec::DiffPir(p) => format!("DiffPir({})", p.steps),
        SamplerSpec::PiGdm(p) => format!("PiGdm({})", p.steps),
        SamplerSpec::Ddrm(p) => format!("Ddrm({})", p.steps),
        other => other.name().to_string(),
    }
}
