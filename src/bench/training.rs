//! `posterior-lab bench --training`: seconds per training step (the task's batch, the loss's
//! gradients, Adam) of every shipped model's `train.ron`, through the CPU U-Net's backward
//! pass and through burn's autodiff, on the `flex` backend, side by side. The networks are
//! the cards' architectures with fresh weights and the images synthetic of the card's shape:
//! a step's cost depends on neither, so no training data is needed.

use crate::error::Result;
use crate::priors::network::{CARD_FILE, ModelCard};
use crate::priors::unet::EdmUNet;
use crate::tensor;
use crate::train::config::TrainConfig;
use crate::train::step;
use crate::train::tasks::{Task, consistency_grid};
use crate::train::trainer::synthetic;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds per step over `rounds` (after one warm-up step) of one path.
fn time_steps(
    cfg: &TrainConfig,
    card: &ModelCard,
    cpu: bool,
    rounds: usize,
    device: &Device,
) -> Result<f64> {
    let ad = device.clone().autodiff();
    let mut model = EdmUNet::new(card.trained_unet()?, device)
        .to_device(&ad)
        .train();
    let mut base = card.trained_unet()?.clone();
    base.cond_channels = 0;
    base.consistency_sigma_min = None;
    let teacher = EdmUNet::new(&base, device).with_cpu_inference(device);
    let grid = match cfg.task {
        Task::Consistency { grid, top } => {
            consistency_grid(grid, card.sigma_min, top.unwrap_or(card.sigma_max))
        }
        _ => vec![],
    };
    let set = synthetic(card.shape, 64, 5);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut times = vec![];
    for round in 0..=rounds {
        let mut rng = tensor::rng(round as u64);
        let start = Instant::now();
        let sb = step::make_batch(cfg, &set, &model, Some(&teacher), &grid, &mut rng, device)?;
        let (_, grads): (f64, GradientsParams) = if cpu {
            step::gradients(&model, &sb, device)?
        } else {
            step::burn_gradients(&model, &sb)?
        };
        model = optim.step(1e-5, model, grads);
        if round > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}

/// The table over every `models/*/train.ron` (from the source tree), or over one model folder.
pub fn training_table(quick: bool, only: Option<&Path>) -> Result<()> {
    let device = Device::flex();
    let mut dirs: Vec<_> = match only {
        Some(p) => vec![p.to_path_buf()],
        None => std::fs::read_dir(Path::new("models"))
            .map_err(|e| crate::error::Error::file(Path::new("models"), e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("train.ron").is_file() && p.join(CARD_FILE).is_file())
            .collect(),
    };
    dirs.sort();
    println!(
        "training steps on flex, {} thread(s): the task's batch, gradients, Adam; median of {} steps",
        rayon::current_num_threads(),
        if quick { 1 } else { 5 }
    );
    println!(
        "{:<20} {:>10} {:>6} {:>12} {:>14} {:>8}",
        "model", "image", "batch", "CPU U-Net s", "burn autodiff s", "speed-up"
    );
    for dir in dirs {
        let cfg = TrainConfig::load(&dir.join("train.ron"))?;
        let card_path = dir.join(CARD_FILE);
        let card = ModelCard::parse(&crate::files::read_text(&card_path)?, &card_path)?;
        let rounds = if quick { 1 } else { 5 };
        let cpu_s = time_steps(&cfg, &card, true, rounds, &device)?;
        let burn_s = time_steps(&cfg, &card, false, rounds, &device)?;
        let [c, h, w] = card.shape;
        println!(
            "{:<20} {:>10} {:>6} {:>12.3} {:>14.3} {:>7.1}x",
            card.name,
            format!("{c}x{h}x{w}"),
            cfg.batch,
            cpu_s,
            burn_s,
            burn_s / cpu_s
        );
    }
    Ok(())
}
