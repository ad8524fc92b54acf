//! `posterior-lab bench --network`: the cost of one network evaluation (NFE) and of one
//! vector-Jacobian product through it (VJP, what DPS, ΠGDM and CPS pay per step), with the
//! shipped weights, at batch 1 and 16, on 28×28 grey (fashion-mnist) and 64×64 colour (photo),
//! with all cores and with one. Each figure is the median and the best of several timed rounds
//! after a warm-up, with GFLOP/s from the U-Net's counted multiply-adds. The PyTorch peer
//! (`bench/pytorch/peer.py`) runs the same protocol on the same weights and reads `--json`.

use crate::error::{Error, Result};
use crate::priors::network::read_model;
use crate::priors::unet::EdmUNet;
use crate::tensor;
use burn::tensor::{Device, Tensor};
use std::path::Path;
use std::time::Instant;

/// One measured configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetworkFigure {
    pub model: String,
    pub work: &'static str,
    pub side: usize,
    pub channels: usize,
    pub batch: usize,
    pub threads: usize,
    pub median_ms: f64,
    pub best_ms: f64,
    /// Floating-point operations of the call (2 per multiply-add; a VJP counts 2 forwards).
    pub gflop: f64,
}

impl NetworkFigure {
    pub fn gflops(&self) -> f64 {
        self.gflop / (self.median_ms * 1e-3)
    }
}

/// The fixed input of a configuration: x = 0.5·N(0, I) + σ·N(0, I) at σ = 0.5, seed 11, and the
/// VJP's cotangent v (seed 12).
pub fn inputs(batch: usize, c: usize, side: usize) -> (Vec<f32>, Vec<f32>) {
    let n = batch * c * side * side;
    let mut rng = tensor::rng(11);
    let x = (0..n)
        .map(|_| (0.5 * tensor::gaussian(&mut rng) + 0.5 * tensor::gaussian(&mut rng)) as f32)
        .collect();
    let mut rng = tensor::rng(12);
    let v = (0..n).map(|_| tensor::gaussian(&mut rng) as f32).collect();
    (x, v)
}

pub const SIGMA: f64 = 0.5;

/// D(x, σ) and the VJP vᵀ ∂D/∂x, read back to the host.
fn nfe(model: &EdmUNet, x: &Tensor<4>) -> Result<Vec<f32>> {
    let b = x.dims()[0];
    let s = Tensor::<1>::full([b], SIGMA, &x.device());
    tensor::to_vec(&model.denoise(x.clone(), None, s))
}

fn vjp(model: &EdmUNet, x: &Tensor<4>, v: &Tensor<4>) -> Result<Vec<f32>> {
    // The path the samplers take: the CPU pullback when there is one, else autodiff.
    if let Some((_, pullback)) = model.denoise_vjp(x, None, SIGMA) {
        return tensor::to_vec(&pullback(v.clone())?);
    }
    let b = x.dims()[0];
    let xa = x.clone().autodiff().require_grad();
    let s = Tensor::<1>::full([b], SIGMA, &x.device());
    let grads = (model.denoise(xa.clone(), None, s) * v.clone().autodiff())
        .sum()
        .backward();
    let g = xa
        .grad(&grads)
        .ok_or_else(|| Error::Backend("bench: no gradient reached x".into()))?;
    tensor::to_vec(&g)
}

/// Median and best milliseconds per call over `rounds` timed rounds of about 0.3 s each.
fn time(rounds: usize, mut call: impl FnMut() -> Result<Vec<f32>>) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    call()?; // warm-up
    let first = t0.elapsed().as_secs_f64();
    let per_round = ((0.3 / first.max(1e-4)) as usize).clamp(1, 200);
    let mut ms = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            call()?;
        }
        ms.push(t.elapsed().as_secs_f64() * 1e3 / per_round as f64);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[0]))
}

/// Writes x, v, D(x) and the VJP of every configuration as `.npy` into `dir` (the peer's
/// agreement check).
fn write_reference(
    dir: &Path,
    tag: &str,
    shape: [usize; 4],
    x: &[f32],
    v: &[f32],
    d: &[f32],
    g: &[f32],
) -> Result<()> {
    for (name, data) in [("x", x), ("v", v), ("d", d), ("vjp", g)] {
        crate::npy::write(&dir.join(format!("{tag}-{name}.npy")), &shape, data)?;
    }
    Ok(())
}

/// Runs the protocol and prints the table; `json`: also write the figures there.
pub fn network_table(quick: bool, json: Option<&Path>, reference: Option<&Path>) -> Result<()> {
    let device = Device::flex();
    let cores = rayon::current_num_threads();
    let rounds = if quick { 2 } else { 7 };
    let mut figures = vec![];
    println!("# One network evaluation (NFE) and one VJP through it, burn flex, shipped weights");
    println!(
        "(median / best of {rounds} rounds after a warm-up; VJP = forward + input gradient, counted as 2 forwards)\n"
    );
    println!(
        "| model | work | image | batch | threads | ms median | ms best | image-calls/s | GFLOP/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, side) in [("fashion-mnist", 28usize), ("photo", 64)] {
        let found = crate::models::all()
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                Error::invalid("bench", format!("the shipped model {name} was not found"))
            })?;
        // As every prior is loaded for sampling: NFE and VJP on the CPU path.
        let (card, model, _) = read_model(&found.dir, &device)?;
        let model = model.with_cpu_inference(&device);
        let unet = card.trained_unet()?;
        let c = unet.image_channels;
        let fwd = unet.flops(side, side);
        for batch in [1usize, 16] {
            let shape = [batch, c, side, side];
            let (xs, vs) = inputs(batch, c, side);
            let x = tensor::from_vec(xs.clone(), shape, &device);
            let v = tensor::from_vec(vs.clone(), shape, &device);
            if let Some(dir) = reference {
                let d = nfe(&model, &x)?;
                let g = vjp(&model, &x, &v)?;
                write_reference(dir, &format!("{name}-b{batch}"), shape, &xs, &vs, &d, &g)?;
            }
            let counts = if cores > 1 { vec![cores, 1] } else { vec![1] };
            for threads in counts {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| Error::Backend(format!("thread pool: {e}")))?;
                for work in ["NFE", "VJP"] {
                    let (median_ms, best_ms) = pool.install(|| {
                        time(rounds, || match work {
                            "NFE" => nfe(&model, &x),
                            _ => vjp(&model, &x, &v),
                        })
                    })?;
                    let passes = if work == "NFE" { 1.0 } else { 2.0 };
                    let f = NetworkFigure {
                        model: name.into(),
                        work,
                        side,
                        channels: c,
                        batch,
                        threads,
                        median_ms,
                        best_ms,
                        gflop: passes * fwd * batch as f64 / 1e9,
                    };
                    println!(
                        "| {name} | {work} | {c}x{side}x{side} | {batch} | {threads} | {median_ms:.2} | {best_ms:.2} | {:.1} | {:.2} |",
                        batch as f64 / (median_ms * 1e-3),
                        f.gflops()
                    );
                    figures.push(f);
                }
            }
        }
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&figures)
            .map_err(|e| Error::invalid("bench", format!("cannot write JSON: {e}")))?;
        std::fs::write(path, text).map_err(|e| Error::file(path, e.to_string()))?;
    }
    Ok(())
}
