//! `posterior-lab bench --lab`: every sampler preset on the 2-D lab's bundled scenes, run as the
//! lab runs them, with the final particles' distance to the exact posterior beside the spread
//! between exact sets of the same size: what a class sees at the end of each run.

use crate::error::Result;
use crate::lab::examples;
use crate::lab::run::{LabRun, RunRequest};
use crate::samplers;
use burn::tensor::Device;
use std::time::Instant;

/// One sampler on one scene.
pub struct LabRow {
    pub scene: &'static str,
    pub preset: &'static str,
    pub steps: usize,
    pub seconds: f64,
    pub sw: f64,
    pub sw_floor: (f64, f64),
    pub mode_error: f64,
    pub mode_floor: (f64, f64),
}

/// Runs every preset on every bundled scene with `particles` particles (CPU backend, as the lab).
pub fn lab_rows(particles: usize, seed: u64) -> Result<Vec<LabRow>> {
    let device = Device::flex();
    let mut rows = vec![];
    for scene_name in examples::NAMES {
        let Some(scene) = examples::example(scene_name) else {
            continue;
        };
        for info in samplers::ALL {
            let sampler = samplers::parse(info.preset).map_err(|e| {
                crate::error::Error::invalid("preset", format!("{}: {e}", info.preset))
            })?;
            let req = RunRequest {
                scene: scene.clone(),
                sampler,
                particles,
                seed,
            };
            let t0 = Instant::now();
            let (mut run, run_info, mut last) = LabRun::start(&req, &device)?;
            while !run.is_done() {
                last = run.step()?;
            }
            rows.push(LabRow {
                scene: scene_name,
                preset: info.preset,
                steps: run_info.total_steps,
                seconds: t0.elapsed().as_secs_f64(),
                sw: last.sw,
                sw_floor: run_info.sw_floor,
                mode_error: last.mode_error,
                mode_floor: run_info.mode_floor,
            });
        }
    }
    Ok(rows)
}

/// Prints [`lab_rows`] as a Markdown table per scene.
pub fn lab_table(particles: usize) -> Result<()> {
    let rows = lab_rows(particles, 7)?;
    println!("# Sampler presets on the 2-D lab's scenes ({particles} particles, CPU backend)\n");
    println!(
        "SW = sliced Wasserstein-1 of the final particles (x0-hat) to exact posterior samples \
         (mean over 64 directions); mode = total variation of the mode weights. \"exact\" is the \
         mean ± sd of the same figure between 20 exact sets of the same size."
    );
    let mut scene = "";
    for r in &rows {
        if r.scene != scene {
            scene = r.scene;
            println!("\n## {scene}\n");
            println!("| preset | steps | SW | mode error | seconds |");
            println!("|---|---|---|---|---|");
        }
        println!(
            "| `{}` | {} | {:.3} (exact {:.3} ± {:.3}) | {:.3} (exact {:.3} ± {:.3}) | {:.2} |",
            r.preset,
            r.steps,
            r.sw,
            r.sw_floor.0,
            r.sw_floor.1,
            r.mode_error,
            r.mode_floor.0,
            r.mode_floor.1,
            r.seconds
        );
    }
    Ok(())
}
