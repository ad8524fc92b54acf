//! `posterior-lab bench …`: its arguments and which table or timing they ask for.

use super::{
    accuracy_table, calibration_table, lab_table, network_speed, network_table, photo_table,
    run_backend, tiles_table, training::training_table, uncertainty_speed,
};
use crate::backend::{self, BackendKind};
use crate::error::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Only this backend (default: cpu, and wgpu when an adapter exists).
    #[arg(long)]
    pub backend: Option<BackendKind>,
    /// Fewer iterations (a smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Instead of speed: the accuracy table of every sampler on the exact mixture beds.
    #[arg(long)]
    pub table: bool,
    /// Instead of speed: coverage, z² and CRPS of every sampler preset on held-out
    /// Fashion-MNIST images (run from the source tree).
    #[arg(long, conflicts_with = "table")]
    pub calibration: bool,
    /// Only the uncertainty analysis: PCA and per-pixel intervals of 256 chains of a
    /// 3×256×256 image (64 chains of 3×64×64 with --quick).
    #[arg(long, conflicts_with_all = ["table", "calibration"])]
    pub uncertainty: bool,
    /// Only the 2-D lab: every sampler preset on its bundled scenes, final distance to the
    /// exact posterior (1000 particles, or --chains).
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty"])]
    pub lab: bool,
    /// Only the measurements beyond linear-Gaussian: every preset in the plane against the
    /// grid posterior (1000 particles, or --chains), and Fashion-MNIST phase retrieval with
    /// DPS and DAPS on --images held-out images (8 chains).
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty", "lab"])]
    pub nonlinear: bool,
    /// Only the network: NFE and VJP with the shipped weights, batch 1 and 16, all cores
    /// and one, with GFLOP/s (the protocol bench/pytorch/peer.py repeats).
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty", "lab"])]
    pub network: bool,
    /// With --network: also write the figures as JSON here.
    #[arg(long, requires = "network")]
    pub json: Option<PathBuf>,
    /// With --network: write each configuration's input, output and VJP as .npy files into
    /// this folder (the peer's agreement check).
    #[arg(long, requires = "network")]
    pub reference: Option<PathBuf>,
    /// Chains per sampler in the table (default 1000; 39 for --calibration).
    #[arg(long)]
    pub chains: Option<usize>,
    /// Held-out images per degradation for --calibration.
    #[arg(long, default_value_t = 4)]
    pub images: usize,
    /// With --calibration: these sampler lines, separated by ';', instead of the window's
    /// presets (e.g. "Eps(steps: 10); Ddrm(steps: 20)": quality against NFE).
    #[arg(long, requires = "calibration")]
    pub presets: Option<String>,
    /// Only the photo table: a held-out photo restored at each --sizes for each
    /// degradation with `Auto` (and --lines), seconds, NFE and PSNR against the classical
    /// baseline (run from the source tree).
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty", "lab", "network"])]
    pub photo: bool,
    /// With --photo: picture sides (default 256,512).
    #[arg(long, value_delimiter = ',', requires = "photo")]
    pub sizes: Option<Vec<usize>>,
    /// With --photo: sampler lines separated by ';' (default "Auto").
    #[arg(long, requires = "photo")]
    pub lines: Option<String>,
    /// With --photo: only these degradations (sr2, sr4, scratches, deblur, denoise, colourise).
    #[arg(long, value_delimiter = ',', requires = "photo")]
    pub only: Option<Vec<String>>,
    /// With --photo: the held-out picture (default assets/demo/picosdeeuropa.jpg); its
    /// centre square is used.
    #[arg(long, requires = "photo")]
    pub image: Option<PathBuf>,
    /// With --photo: the whole picture instead of its centre square, its longer side shrunk to
    /// each --sizes (never enlarged), e.g. `--sizes 2560 --whole` for a 4-megapixel photo.
    #[arg(long, requires = "photo")]
    pub whole: bool,
    /// With --photo: fit the spread's calibration factor on the photos of this folder
    /// (centre squares at the first --sizes; even-numbered photos fit it, odd ones check it)
    /// for each degradation and sampler line, and print the model card's entries.
    #[arg(long, requires = "photo")]
    pub fit_spread: Option<PathBuf>,
    /// Only the tiling check: the photo prior denoising a 256² held-out photo whole and in
    /// tiles of each size.
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty", "lab", "network", "photo"])]
    pub tiles: bool,
    /// With --photo or --tiles: the photo prior's model folder (default models/photo); with
    /// --training: only this model folder.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Only training speed: seconds per step of every models/*/train.ron through the CPU
    /// U-Net and through burn's autodiff, on flex (run from the source tree).
    #[arg(long, conflicts_with_all = ["table", "calibration", "uncertainty", "lab", "network", "photo", "tiles"])]
    pub training: bool,
    /// Only an imported checkpoint's speed: seconds per network call and per VJP at its own
    /// size (a model name or folder; batch sizes from --batches).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["table", "calibration", "uncertainty", "lab", "network", "photo", "tiles", "training"])]
    pub checkpoint: Option<String>,
    /// With --checkpoint: batch sizes (default 1,4).
    #[arg(long, value_delimiter = ',', requires = "checkpoint")]
    pub batches: Option<Vec<usize>>,
    /// With --checkpoint: timed passes per batch size (the median is printed).
    #[arg(long, default_value_t = 3, requires = "checkpoint")]
    pub passes: usize,
    /// With --checkpoint: the class of a class-conditional model.
    #[arg(long, requires = "checkpoint")]
    pub class: Option<usize>,
    /// With --checkpoint: the noise level of the calls.
    #[arg(long, default_value_t = 1.0, requires = "checkpoint")]
    pub sigma: f64,
}

/// Runs what the arguments ask for.
pub fn run_cli(args: BenchArgs, device: Option<&str>) -> Result<()> {
    let BenchArgs {
        backend,
        quick,
        table,
        calibration,
        uncertainty,
        lab,
        nonlinear,
        network,
        json,
        reference,
        chains,
        images,
        presets,
        photo,
        sizes,
        lines,
        only,
        image,
        whole,
        fit_spread,
        tiles,
        model,
        training,
        checkpoint,
        batches,
        passes,
        class,
        sigma,
    } = args;
    {
        if let Some(name) = checkpoint {
            let sel = backend::choose(backend, device)?;
            eprintln!("{}", sel.notice);
            let batches = batches.unwrap_or_else(|| vec![1, 4]);
            super::checkpoint::checkpoint_table(&sel, &name, class, &batches, passes, sigma)?;
            return Ok(());
        }
        if training {
            return training_table(quick, model.as_deref());
        }
        if photo || tiles {
            let sel = backend::choose(backend, device)?;
            eprintln!("{}", sel.notice);
            let model = model.unwrap_or_else(|| PathBuf::from("models/photo"));
            if tiles {
                return tiles_table(&sel, &model, 256);
            }
            let lines: Vec<String> = lines
                .as_deref()
                .unwrap_or("Auto")
                .split(';')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            let sizes = sizes.unwrap_or_else(|| vec![256, 512]);
            if let Some(dir) = fit_spread {
                return super::photo::fit_spread(
                    &sel,
                    &dir,
                    sizes[0],
                    &lines,
                    chains.unwrap_or(4).max(2),
                    only.as_deref(),
                    &model,
                );
            }
            photo_table(
                &sel,
                &sizes,
                &lines,
                chains.unwrap_or(4).max(1),
                only.as_deref(),
                super::photo::Source {
                    image: image.as_deref(),
                    whole,
                },
                &model,
            )
        } else if network {
            network_table(quick, json.as_deref(), reference.as_deref())
        } else if uncertainty {
            uncertainty_speed(quick)
        } else if nonlinear {
            super::nonlinear::plane_table(chains.unwrap_or(1000).clamp(10, 100_000))?;
            super::nonlinear::phase_retrieval_table(
                images.max(1),
                8,
                &[
                    "Dps(steps: 200)",
                    "Dps(steps: 500)",
                    "Daps(steps: 50)",
                    "Daps(steps: 100)",
                ],
            )
        } else if lab {
            lab_table(
                chains
                    .unwrap_or(1000)
                    .clamp(10, crate::lab::run::MAX_PARTICLES),
            )
        } else if table || calibration {
            let sel = match device {
                Some(_) => backend::choose(backend, device)?,
                None => backend::select(Some(backend.unwrap_or(BackendKind::Cpu)))?,
            };
            eprintln!("{}", sel.notice);
            if table {
                accuracy_table(&sel, chains.unwrap_or(1000).max(10))
            } else {
                calibration_table(
                    &sel,
                    chains.unwrap_or(39).max(2),
                    images.max(1),
                    presets.as_deref(),
                )
            }
        } else {
            bench_cmd(backend, device, quick)
        }
    }
}

fn bench_cmd(backend: Option<BackendKind>, device: Option<&str>, quick: bool) -> Result<()> {
    let mut selections = vec![];
    match backend {
        _ if device.is_some() => selections.push(backend::choose(backend, device)?),
        Some(kind) => selections.push(backend::select(Some(kind))?),
        None => {
            selections.push(backend::cpu());
            if !backend::adapters().is_empty() {
                selections.push(backend::select(Some(BackendKind::Wgpu))?);
            }
        }
    }
    for sel in &selections {
        eprintln!("{}", sel.notice);
        run_backend(sel, quick)?;
        network_speed(sel, quick)?;
    }
    uncertainty_speed(quick)?;
    Ok(())
}
