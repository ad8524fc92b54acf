//! The command line: `posterior-lab sample | bench`, on the same engine as the window.

use crate::backend::{self, BackendKind};
use crate::error::{Error, Result};
use crate::{bench, output, recipe};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "posterior-lab",
    version,
    about = "Posterior sampling for image inverse problems with diffusion priors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
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
    },
    /// Print throughput figures for each backend.
    Bench {
        /// Only this backend (default: cpu, and wgpu when an adapter exists).
        #[arg(long)]
        backend: Option<BackendKind>,
        /// Fewer iterations (a smoke run).
        #[arg(long)]
        quick: bool,
        /// Instead of speed: the accuracy table of every sampler on the exact mixture beds.
        #[arg(long)]
        table: bool,
        /// Chains per sampler in the table.
        #[arg(long, default_value_t = 1000)]
        chains: usize,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Sample {
            recipe,
            out,
            backend,
            quiet,
        }) => sample(recipe, out, backend, quiet),
        Some(Command::Bench {
            backend,
            quick,
            table,
            chains,
        }) => {
            if table {
                let sel = backend::select(Some(backend.unwrap_or(BackendKind::Cpu)))?;
                eprintln!("{}", sel.notice);
                bench::accuracy_table(&sel, chains.max(10))
            } else {
                bench_cmd(backend, quick)
            }
        }
        None => {
            eprintln!(
                "posterior-lab: the window is not part of this build yet.\n\
                 Try: posterior-lab sample --recipe assets/recipes/gmm-inpaint.ron --out out/gmm-inpaint\n\
                 (posterior-lab --help lists the commands)"
            );
            Ok(())
        }
    }
}

fn sample(
    recipe_path: PathBuf,
    out: PathBuf,
    backend: Option<BackendKind>,
    quiet: bool,
) -> Result<()> {
    let sel = backend::select(backend)?;
    if !quiet {
        eprintln!("{}", sel.notice);
    }
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
    let result = output::run(&loaded, &sel.description, |state| {
        if let Some(bar) = &bar {
            bar.set_length(state.total_steps as u64);
            bar.set_position(state.step as u64);
        }
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
        eprintln!(
            "{}: {} chains, {} nfe/chain, {:.2} s, residual {:.3}{} -> {}",
            s.sampler,
            s.chains,
            s.nfe_per_chain,
            s.seconds,
            s.residual,
            s.psnr_mean
                .map(|p| format!(", PSNR of mean {p:.2} dB"))
                .unwrap_or_default(),
            out.display()
        );
    }
    Ok(())
}

fn bench_cmd(backend: Option<BackendKind>, quick: bool) -> Result<()> {
    let mut selections = vec![];
    match backend {
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
        bench::run_backend(sel, quick)?;
    }
    Ok(())
}
