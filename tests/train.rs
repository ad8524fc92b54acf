//! Training: a tiny run lowers the EDM loss, a checkpoint resumes exactly where it stopped, and
//! the exported model round-trips through its file and card into the sampler interface.
#![allow(clippy::unwrap_used)]

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use posterior_lab::operators::{Blur, Downsample, Mask, Operator};
use posterior_lab::priors::Denoiser;
use posterior_lab::priors::network::NetworkPrior;
use posterior_lab::priors::network::{EpsOperator, read_model};
use posterior_lab::priors::unet::{EdmUNet, UNetConfig};
use posterior_lab::problem::Problem;
use posterior_lab::samplers::{self, CpsParams, Drift, GeneratorChoice, SamplerSpec};
use posterior_lab::tensor;
use posterior_lab::train::tasks::{self, Task};
use posterior_lab::train::trainer::{self, DataSpec, Options, TrainConfig};
use std::path::Path;

fn tiny(dir: &Path, steps: usize) -> TrainConfig {
    TrainConfig {
        name: "tiny".into(),
        data: DataSpec::Synthetic {
            shape: [1, 12, 12],
            count: 256,
        },
        model: UNetConfig {
            base_channels: 8,
            channel_mult: vec![1, 2],
            emb_dim: 32,
            ..UNetConfig::default()
        },
        steps,
        batch: 16,
        lr: 2e-3,
        warmup: 10,
        ema: 0.9,
        seed: 3,
        checkpoint_every: 20,
        out: dir.display().to_string(),
        p_mean: -1.2,
        p_std: 1.2,
        hflip: false,
        any_size: false,
        data_note: "synthetic blobs".into(),
        holdout_per_file: 0,
        init_from: None,
        task: Task::Denoiser,
    }
}

/// The loss on a fixed batch (fixed images, σ and noise) for the model saved in `file`.
fn fixed_loss(cfg: &TrainConfig, file: &Path, device: &Device) -> f64 {
    let rec = ModuleRecord::load(file).unwrap();
    let model = EdmUNet::new(&cfg.model, device).load_record(rec);
    let set = trainer::synthetic([1, 12, 12], 64, 99);
    let x0 = tensor::from_vec(set.data.clone(), [64, 1, 12, 12], device);
    let sig: Vec<f64> = (0..64).map(|i| 0.02 * (1.12f64).powi(i)).collect();
    let sigma = tensor::from_f64(&sig, [64], device);
    let noise = tensor::normal(&mut tensor::rng(5), [64, 1, 12, 12], device);
    let loss = trainer::edm_loss(&model, x0, sigma, noise);
    f64::from(tensor::to_vec(&loss).unwrap()[0])
}

#[test]
fn tiny_training_lowers_the_loss_and_resumes() {
    let device = Device::flex();
    let dir = tempdir("tiny-train");
    let config_path = dir.join("train.ron");
    let cfg = tiny(&dir, 160);
    let opts = |n| Options {
        fresh: false,
        max_steps_now: Some(n),
        progress: false,
    };
    // 20 steps, then stop (as if the session ended).
    let r1 = trainer::train(&config_path, &cfg, &device, &opts(20)).unwrap();
    assert_eq!(r1.steps_done, 20);
    assert!(r1.resumed_from.is_none());
    let early = fixed_loss(&cfg, &dir.join("checkpoint/model.bpk"), &device);

    // Resume from the checkpoint and finish.
    let r2 = trainer::train(&config_path, &cfg, &device, &opts(1000)).unwrap();
    assert_eq!(r2.resumed_from, Some(20));
    assert_eq!(r2.steps_done, 140);
    let late = fixed_loss(&cfg, &dir.join("checkpoint/model.bpk"), &device);
    eprintln!("fixed-batch EDM loss: {early:.4} after 20 steps, {late:.4} after 160");
    assert!(late < 0.85 * early, "loss {early} -> {late}");

    let state = std::fs::read_to_string(dir.join("checkpoint/state.ron")).unwrap();
    assert!(state.contains("step: 160"), "{state}");

    // The exported EMA model loads through its card as a prior and denoises a batch.
    let prior = NetworkPrior::load(&dir, Some([1, 12, 12]), &device).unwrap();
    assert_eq!(prior.card.trained_steps, 160);
    let x = tensor::normal(&mut tensor::rng(1), [3, 1, 12, 12], &device);
    let d = prior.denoise(x.clone(), 0.5);
    assert_eq!(d.dims(), [3, 1, 12, 12]);
    assert_eq!(tensor::non_finite_chains(&d).unwrap(), 0);

    // A shape the card does not allow is refused with the model's name in the message.
    let err = NetworkPrior::load(&dir, Some([1, 16, 16]), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tiny") && err.contains("[1, 12, 12]"), "{err}");
}

#[test]
fn checkpoint_round_trip_is_exact_and_network_is_fully_convolutional() {
    let device = Device::flex();
    let dir = tempdir("roundtrip");
    let cfg = UNetConfig {
        base_channels: 8,
        channel_mult: vec![1, 2, 2],
        emb_dim: 16,
        ..UNetConfig::default()
    };
    let model = EdmUNet::new(&cfg, &device);
    // Odd sizes: the network pads to a multiple of 4 and crops back.
    let x = tensor::normal(&mut tensor::rng(2), [2, 1, 13, 7], &device);
    let s = Tensor::<1>::from_floats([0.3, 4.0], &device);
    let before = tensor::to_vec(&model.denoise(x.clone(), None, s.clone())).unwrap();
    assert_eq!(before.len(), 2 * 13 * 7);
    let file = dir.join("m.bpk");
    model.into_record().save(&file).unwrap();
    let loaded = EdmUNet::new(&cfg, &device).load_record(ModuleRecord::load(&file).unwrap());
    let after = tensor::to_vec(&loaded.denoise(x, None, s)).unwrap();
    assert_eq!(before, after);
}

#[test]
fn bad_training_configs_name_the_problem() {
    let dir = tempdir("badcfg");
    let p = dir.join("t.ron");
    std::fs::write(
        &p,
        "(name: \"x\", data: Idx(\"nope.gz\"), steps: 10, batch: 0)",
    )
    .unwrap();
    let err = TrainConfig::load(&p).err().unwrap().to_string();
    assert!(err.contains("t.ron") && err.contains("batch"), "{err}");
    std::fs::write(
        &p,
        "(name: \"x\", data: Idx(\"nope.gz\"), steps: 10, init_from: \"p\", task: Consistency(grid: 4, top: -1.0))",
    )
    .unwrap();
    let err = TrainConfig::load(&p).err().unwrap().to_string();
    assert!(err.contains("top must be a positive σ"), "{err}");
    std::fs::write(&p, "(name: \"x\", data: Idx(\"nope.gz\"), steps: 10)").unwrap();
    let cfg = TrainConfig::load(&p).unwrap();
    let err = trainer::train(
        &p,
        &cfg,
        &Device::flex(),
        &Options {
            fresh: true,
            max_steps_now: None,
            progress: false,
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("nope.gz"), "{err}");
}

fn run(cfg: &TrainConfig, config_path: &Path, steps: usize) {
    let device = Device::flex();
    let opts = Options {
        fresh: true,
        max_steps_now: Some(steps),
        progress: false,
    };
    trainer::train(config_path, cfg, &device, &opts).unwrap();
}

/// EPS's loss on a fixed batch (fixed images, σ, masks and noise).
fn fixed_eps_loss(model: &EdmUNet, device: &Device) -> f64 {
    let set = trainer::synthetic([1, 12, 12], 64, 77);
    let x0 = tensor::from_vec(set.data.clone(), [64, 1, 12, 12], device);
    let sig: Vec<f64> = (0..64).map(|i| 0.05 * (1.1f64).powi(i)).collect();
    let mut total = 0.0;
    for family in [EpsOperator::Mask, EpsOperator::Downsample(2)] {
        let mut rng = tensor::rng(8);
        let (mu, obs) = tasks::eps_inputs(
            x0.clone(),
            &sig,
            family,
            (0.05, 0.05),
            (0.3, 0.8),
            (0.25, 0.7),
            &mut rng,
        );
        let d = model.denoise(mu, Some(obs), tensor::from_f64(&sig, [64], device));
        total += f64::from(tensor::to_vec(&(d - x0.clone()).square().mean()).unwrap()[0]);
    }
    total
}

/// The teacher's probability-flow ODE from σ_max·z (Heun on `grid`, descending to grid[0]).
fn teacher_ode(teacher: &EdmUNet, z: Tensor<4>, grid: &[f64]) -> Tensor<4> {
    let b = z.dims()[0];
    let device = z.device();
    let den = |x: Tensor<4>, s: f64| teacher.denoise(x, None, Tensor::full([b], s, &device));
    let mut x = z.mul_scalar(grid[grid.len() - 1]);
    for i in (0..grid.len() - 1).rev() {
        let (s, sn) = (grid[i + 1], grid[i]);
        let d = (x.clone() - den(x.clone(), s)).div_scalar(s);
        let e = x.clone() + d.clone().mul_scalar(sn - s);
        let d2 = (e.clone() - den(e, sn)).div_scalar(sn);
        x = x + (d + d2).mul_scalar(0.5 * (sn - s));
    }
    x
}

fn one_step_gap(student: &EdmUNet, teacher: &EdmUNet, grid: &[f64], device: &Device) -> f64 {
    let z = tensor::normal(&mut tensor::rng(4), [64, 1, 12, 12], device);
    let hi = grid[grid.len() - 1];
    let one = student.denoise(
        z.clone().mul_scalar(hi),
        None,
        Tensor::full([64], hi, device),
    );
    let ode = teacher_ode(teacher, z, grid);
    f64::from(tensor::to_vec(&(one - ode).square().mean()).unwrap()[0])
}

/// The EPS fine-tune starts exactly at the prior (zero-initialised extra channel), learns, and
/// is found beside the prior for the operators its card names; the consistency distillation
/// keeps f(x, σ_min) = x, brings the one-step map closer to the teacher's ODE, and is found as
/// the prior's generator.
#[test]
fn eps_fine_tune_and_consistency_distillation_start_from_the_prior() {
    let device = Device::flex();
    let dir = tempdir("tasks");
    let base_dir = dir.join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    let base_cfg = tiny(Path::new("."), 120);
    run(&base_cfg, &base_dir.join("train.ron"), 120);
    let (_, base, _) = read_model(&base_dir, &device).unwrap();

    // EPS fine-tune.
    let eps_dir = dir.join("base-eps");
    std::fs::create_dir_all(&eps_dir).unwrap();
    let mut eps_cfg = tiny(Path::new("."), 150);
    eps_cfg.name = "tiny-eps".into();
    eps_cfg.init_from = Some("../base".into());
    eps_cfg.lr = 1e-3;
    eps_cfg.task = Task::Eps {
        operators: vec![EpsOperator::Mask, EpsOperator::Downsample(2)],
        sigma_y: (0.05, 0.05),
        missing: (0.3, 0.8),
        box_side: (0.25, 0.7),
    };
    eps_cfg.validate().unwrap();
    let widened = base.clone().widen_input(1);
    let x = tensor::normal(&mut tensor::rng(6), [4, 1, 12, 12], &device);
    let obs = tensor::normal(&mut tensor::rng(7), [4, 1, 12, 12], &device);
    let s = Tensor::<1>::from_floats([0.1, 0.5, 2.0, 20.0], &device);
    assert_eq!(
        tensor::to_vec(&widened.denoise(x.clone(), Some(obs), s.clone())).unwrap(),
        tensor::to_vec(&base.denoise(x, None, s)).unwrap(),
        "the widened network must compute exactly what the prior computed"
    );
    let before = fixed_eps_loss(&widened, &device);
    run(&eps_cfg, &eps_dir.join("train.ron"), 150);
    let (card, tuned, _) = read_model(&eps_dir, &device).unwrap();
    assert_eq!(card.unet.unwrap().cond_channels, 1);
    let after = fixed_eps_loss(&tuned, &device);
    eprintln!(
        "EPS loss on a fixed batch: {before:.4} (the prior, zero-shot) -> {after:.4} (150 steps)"
    );
    assert!(
        after < 0.9 * before,
        "EPS fine-tune did not learn: {before} -> {after}"
    );

    // Consistency distillation.
    let cm_dir = dir.join("base-cm");
    std::fs::create_dir_all(&cm_dir).unwrap();
    let mut cm_cfg = tiny(Path::new("."), 300);
    cm_cfg.name = "tiny-cm".into();
    cm_cfg.init_from = Some("../base".into());
    cm_cfg.lr = 1e-3;
    cm_cfg.task = Task::Consistency { grid: 6, top: None };
    let grid = tasks::consistency_grid(6, 0.002, 80.0);
    let mut student0 = base.clone();
    student0.consistency_sigma_min = Some(0.002);
    let gap0 = one_step_gap(&student0, &base, &grid, &device);
    run(&cm_cfg, &cm_dir.join("train.ron"), 300);
    let (card, student, _) = read_model(&cm_dir, &device).unwrap();
    assert_eq!(card.unet.unwrap().consistency_sigma_min, Some(0.002));
    let gap = one_step_gap(&student, &base, &grid, &device);
    eprintln!(
        "one-step vs teacher ODE (MSE): {gap0:.4} before distillation -> {gap:.4} after 300 steps"
    );
    assert!(
        gap < 0.8 * gap0,
        "distillation did not approach the ODE: {gap0} -> {gap}"
    );
    let x = tensor::normal(&mut tensor::rng(9), [2, 1, 12, 12], &device);
    let at_min = student.denoise(x.clone(), None, Tensor::full([2], 0.002, &device));
    let diff = tensor::to_vec(&(at_min - x).abs().max()).unwrap()[0];
    assert!(diff < 1e-6, "f(x, σ_min) must be x, off by {diff}");

    // Both are found beside the prior and used only where they apply.
    let prior = NetworkPrior::load(&base_dir, Some([1, 12, 12]), &device).unwrap();
    let shape = [1, 12, 12];
    let mask = Mask::from_array(shape, &[12, 12], vec![1.0; 144], &device).unwrap();
    let down = Downsample::new(shape, 2).unwrap();
    let down3 = Downsample::new([1, 12, 12], 3).unwrap();
    let blur = Blur::new(shape, 1.0, &device).unwrap();
    assert!(prior.eps_denoiser(&mask, 0.05).is_some());
    assert!(prior.eps_denoiser(&down, 0.05).is_some());
    assert!(prior.eps_denoiser(&down3, 0.05).is_none());
    assert!(prior.eps_denoiser(&blur as &dyn Operator, 0.05).is_none());
    assert!(
        prior.eps_denoiser(&mask, 0.5).is_none(),
        "σ_y far outside the trained range"
    );
    let g = prior.generator().expect("the distilled generator is found");
    let z = tensor::normal(&mut tensor::rng(1), [3, 1, 12, 12], &device);
    assert_eq!(tensor::non_finite_chains(&g.generate(z)).unwrap(), 0);
    assert!(g.cold());

    // A generator distilled only up to σ 1 serves warm starts at or below it, never pure noise.
    let text = std::fs::read_to_string(cm_dir.join("card.ron")).unwrap();
    let warm_card = text.replace("grid: 6,", "grid: 6, top: 1.0,");
    assert_ne!(text, warm_card, "the card names its grid");
    std::fs::write(cm_dir.join("card.ron"), warm_card).unwrap();
    let prior = std::sync::Arc::new(NetworkPrior::load(&base_dir, Some(shape), &device).unwrap());
    assert_eq!(
        prior.generator().map(|g| (g.top(), g.cold())),
        Some((1.0, false))
    );
    let x = tensor::normal(&mut tensor::rng(2), [1, 1, 12, 12], &device);
    let y = down.forward(x);
    let problem = Problem::new(prior, std::sync::Arc::new(down), y, 0.05, device).unwrap();
    let nsl = |generator, warm| {
        let spec = SamplerSpec::NoiseSpaceLangevin(CpsParams {
            steps: 2,
            warmup: 2,
            warmup_lr: 0.005,
            generator_steps: 2,
            generator,
            step: None,
            drift: Drift::Paper,
            clamp: false,
            warm,
        });
        samplers::build(&spec, &problem, 2, 1).map(|mut s| {
            s.step(&problem).unwrap();
            (s.detail().unwrap_or_default(), s.state().nfe)
        })
    };
    use GeneratorChoice::{Auto, Distilled};
    let (detail, nfe) = nsl(Auto, Some(0.5)).unwrap();
    assert!(
        detail.contains("distilled") && detail.contains("0.5"),
        "{detail}"
    );
    assert_eq!(nfe, 1, "one network call per step");
    let (detail, _) = nsl(Auto, None).unwrap();
    assert!(
        detail.contains("ODE"),
        "from pure noise Auto takes the ODE: {detail}"
    );
    assert!(nsl(Auto, Some(2.0)).unwrap().0.contains("ODE"));
    for warm in [None, Some(2.0)] {
        let err = nsl(Distilled, warm).unwrap_err().to_string();
        assert!(err.contains("only up to σ 1"), "{err}");
    }
    let one_step = samplers::parse("Prior(steps: 1, distilled: true)").unwrap();
    let err = samplers::build(&one_step, &problem, 2, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("only up to σ 1"), "{err}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pl-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Training settings that cannot make a model are refused before anything runs or is written.
#[test]
fn empty_or_zero_step_training_is_refused() {
    let dir = std::env::temp_dir().join(format!("pl-train-refuse-{}", std::process::id()));
    let mut cfg = tiny(&dir, 0);
    assert!(cfg.validate().unwrap_err().to_string().contains("steps"));
    cfg.steps = 5;
    cfg.data = DataSpec::Synthetic {
        shape: [1, 12, 12],
        count: 0,
    };
    assert!(
        cfg.validate()
            .unwrap_err()
            .to_string()
            .contains("synthetic")
    );
    cfg.data = DataSpec::Synthetic {
        shape: [1, 1 << 20, 1 << 20],
        count: 1 << 20,
    };
    assert!(cfg.validate().is_err(), "a set that cannot fit is refused");
    assert!(!dir.join("model.bpk").exists());
}

/// The CPU U-Net's weight gradients (training on flex) equal burn autodiff's for every task's
/// form of the loss: the raw-output loss with EDM's weighting, with conditioning channels (EPS),
/// and the denoised-output loss of a consistency model (σ_min-shifted preconditioning).
#[test]
fn cpu_training_gradients_equal_burn_autodiff() {
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use posterior_lab::train::step::{self, StepBatch};

    struct Compare<'a> {
        cpu: &'a GradientsParams,
        burn: &'a GradientsParams,
        /// The largest gradient entry of the model (burn's), for the floor below.
        largest: f32,
        checked: usize,
        worst: f32,
    }
    struct Largest<'a>(&'a GradientsParams, f32);
    impl ModuleVisitor for Largest<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = tensor::to_vec(&self.0.get::<D>(param.id).expect("burn's gradient")).unwrap();
            self.1 = g.iter().fold(self.1, |m, v| m.max(v.abs()));
        }
    }
    impl ModuleVisitor for Compare<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let want =
                tensor::to_vec(&self.burn.get::<D>(param.id).expect("burn's gradient")).unwrap();
            let got = tensor::to_vec(
                &self
                    .cpu
                    .get::<D>(param.id)
                    .expect("the CPU path's gradient"),
            )
            .unwrap();
            assert_eq!(got.len(), want.len());
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // A floor for gradients that vanish analytically (a bias followed by GroupNorm),
            // which both compute as rounding noise of the whole loss's size.
            let floor = 1e-6 * self.largest;
            if scale > 1e-3 * self.largest {
                self.worst = self.worst.max(diff / scale);
            }
            assert!(
                diff <= 2e-4 * scale + floor,
                "parameter #{} {:?}: max |cpu − burn| {diff:e}, max |burn| {scale:e}",
                self.checked,
                param.shape()
            );
            self.checked += 1;
        }
    }

    let device = Device::flex();
    let ad = device.clone().autodiff();
    let cfg = UNetConfig {
        image_channels: 2,
        base_channels: 8,
        channel_mult: vec![1, 2, 2],
        emb_dim: 32,
        ..UNetConfig::default()
    };
    // 48×40: the convolutions run in several tiles of rows (kernels::tile_rows).
    let (b, c, h, w) = (3, 2, 48, 40);
    let mut rng = tensor::rng(21);
    let x = tensor::normal(&mut rng, [b, c, h, w], &device);
    let target = tensor::normal(&mut rng, [b, c, h, w], &device);
    let obs = tensor::normal(&mut rng, [b, c, h, w], &device);
    // Built as the trainer builds them: on the inner device, then moved to autodiff.
    let base = EdmUNet::new(&cfg, &device);
    let mut cm = base.clone();
    cm.consistency_sigma_min = Some(0.002);
    let cases = [
        ("denoiser", base.clone(), None, false),
        ("eps", base.clone().widen_input(c), Some(obs), false),
        ("consistency", cm, None, true),
    ];
    for (name, model, cond, denoised) in cases {
        let model = model.to_device(&ad).train();
        let sb = StepBatch {
            x: x.clone(),
            cond,
            sigma: vec![0.01, 0.7, 30.0],
            target: target.clone(),
            denoised,
        };
        let (loss_cpu, g_cpu) = step::cpu_gradients(&model, &sb, &device)
            .unwrap()
            .expect("the CPU path applies on flex");
        let (loss_burn, g_burn) = step::burn_gradients(&model, &sb).unwrap();
        assert!(
            (loss_cpu - loss_burn).abs() < 1e-4 * loss_burn.abs(),
            "{name}: loss {loss_cpu} vs {loss_burn}"
        );
        assert_eq!(g_cpu.len(), g_burn.len(), "{name}: every parameter");
        let mut largest = Largest(&g_burn, 0.0);
        model.visit(&mut largest);
        let mut cmp = Compare {
            cpu: &g_cpu,
            burn: &g_burn,
            largest: largest.1,
            checked: 0,
            worst: 0.0,
        };
        model.visit(&mut cmp);
        eprintln!(
            "{name}: loss {loss_cpu:.6} vs {loss_burn:.6}; {} parameters, worst relative gap {:.1e} among those over 1e-3 of the largest ({:.1e})",
            cmp.checked, cmp.worst, cmp.largest
        );
        assert!(cmp.checked > 40);
    }
}
