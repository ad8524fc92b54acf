//! Training: a tiny run lowers the EDM loss, a checkpoint resumes exactly where it stopped, and
//! the exported model round-trips through its file and card into the sampler interface.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use posterior_lab::priors::Denoiser;
use posterior_lab::priors::network::NetworkPrior;
use posterior_lab::priors::unet::{EdmUNet, UNetConfig};
use posterior_lab::tensor;
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

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pl-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
