//! What a training run teaches the network beyond a plain denoiser:
//!
//! - **EPS fine-tuning** (Mammadov, Kara et al., Algorithm 1): the prior's U-Net gets the
//!   observation image as extra input channels (zero-initialised, so training starts from the
//!   prior) and learns E[x0 | μ⋆, y] from μ⋆ = Σ⋆(x_σ/σ² + Aᵀy/σ_y²), which by Proposition 3 is
//!   x0 plus anisotropic noise N(0, Σ⋆). The operator family is drawn per minibatch, the mask
//!   or box per image, σ_y per image (log-uniform in a range). μ⋆ uses the same closed forms as
//!   the operators' `solve_shifted`, written per image.
//! - **Consistency distillation** (Song, Dhariwal, Chen, Sutskever 2023): a one-step generator
//!   f(x, σ) with f(x, σ_min) = x, trained so that f(x_{n+1}, σ_{n+1}) equals the target's
//!   f(x̂_n, σ_n), where x̂_n is one Heun step of the teacher's probability-flow ODE on a Karras
//!   grid. The target is the student itself without gradient (μ = 0, as "Improved Techniques for
//!   Training Consistency Models" recommends); the loss is the squared error in pixel space (no
//!   LPIPS network is available offline).

use crate::priors::network::EpsOperator;
use crate::priors::unet::EdmUNet;
use crate::schedule;
use crate::tensor::{self, Rng};
use burn::tensor::{Device, Tensor};
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// The training objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Task {
    /// An EDM denoiser (a prior).
    #[default]
    Denoiser,
    /// EPS's conditional denoiser, fine-tuned from `init_from`.
    Eps {
        operators: Vec<EpsOperator>,
        /// σ_y drawn log-uniformly in this range.
        sigma_y: (f64, f64),
        /// Random-pixel masks: fraction of missing pixels, uniform in this range.
        #[serde(default = "d_missing")]
        missing: (f64, f64),
        /// Box masks: side lengths as a fraction of the image side, uniform in this range.
        #[serde(default = "d_box")]
        box_side: (f64, f64),
    },
    /// Consistency distillation of `init_from` (the teacher, also the student's start).
    Consistency {
        /// Levels of the Karras grid σ_min … top the ODE steps run between.
        grid: usize,
        /// The highest σ distilled (default: the prior's σ_max). A generator distilled only up
        /// to σ ≈ 1 serves warm starts f(x_c + σz, σ) and spends all its training there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top: Option<f64>,
    },
}

fn d_missing() -> (f64, f64) {
    (0.3, 0.8)
}
fn d_box() -> (f64, f64) {
    (0.25, 0.7)
}

/// One EPS training input: μ⋆ and the observation image for clean images x0 at noise σ (per
/// image). Returns (μ⋆, observation), both [B, C, H, W].
pub fn eps_inputs(
    x0: Tensor<4>,
    sigma: &[f64],
    family: EpsOperator,
    sigma_y_range: (f64, f64),
    missing: (f64, f64),
    box_side: (f64, f64),
    rng: &mut Rng,
) -> (Tensor<4>, Tensor<4>) {
    let [b, c, h, w] = x0.dims();
    let device = x0.device();
    let (lo, hi) = sigma_y_range;
    let sy: Vec<f64> = (0..b)
        .map(|_| (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp())
        .collect();
    let per = |v: &[f64]| tensor::from_f64(v, [b, 1, 1, 1], &device);
    let sig = per(sigma);
    let sy_t = per(&sy);
    let x_t = x0.clone() + tensor::normal(rng, [b, c, h, w], &device) * sig.clone();
    let w_t = sig.square().recip();
    match family {
        EpsOperator::Mask => {
            let m = masks(b, h, w, missing, box_side, rng, &device).expand([b, c, h, w]);
            let y = (x0 + tensor::normal(rng, [b, c, h, w], &device) * sy_t.clone()) * m.clone();
            // Σ⋆ is diagonal: μ = (x_t/σ² + m y/σ_y²) / (1/σ² + m/σ_y²).
            let w_y = m / sy_t.square();
            let mu = (x_t * w_t.clone() + y.clone() * w_y.clone()) / (w_t + w_y);
            (mu, y)
        }
        EpsOperator::Downsample(f) => {
            let (hl, wl) = (h / f, w / f);
            let pool = |x: Tensor<4>| {
                x.reshape([b, c, hl, f, wl, f])
                    .mean_dims(&[3, 5])
                    .reshape([b, c, hl, wl])
            };
            let up = |y: Tensor<4>| {
                y.reshape([b, c, hl, 1, wl, 1])
                    .expand([b, c, hl, f, wl, f])
                    .reshape([b, c, h, w])
            };
            let y = pool(x0) + tensor::normal(rng, [b, c, hl, wl], &device) * sy_t.clone();
            let obs = up(y);
            // AᵀA = P/f² with P = up∘pool: off range(P) μ = x_t; on it the two precisions add.
            // Written without the large r/c terms so it stays accurate in f32 at σ = 80.
            let k = sy_t.square().mul_scalar((f * f) as f64).recip();
            let px = up(pool(x_t.clone()));
            let on_range = (px.clone() * w_t.clone() + obs.clone() * k.clone()) / (w_t + k);
            (x_t - px + on_range, obs)
        }
    }
}

/// Per-image masks [B, 1, H, W] (1 = seen): half random pixels, half a missing box.
fn masks(
    b: usize,
    h: usize,
    w: usize,
    missing: (f64, f64),
    box_side: (f64, f64),
    rng: &mut Rng,
    device: &Device,
) -> Tensor<4> {
    let mut v = Vec::with_capacity(b * h * w);
    for _ in 0..b {
        if rng.random::<bool>() {
            let p = rng.random_range(missing.0..=missing.1);
            v.extend((0..h * w).map(|_| if rng.random::<f64>() < p { 0.0 } else { 1.0 }));
        } else {
            let bh = ((rng.random_range(box_side.0..=box_side.1) * h as f64).round() as usize)
                .clamp(1, h);
            let bw = ((rng.random_range(box_side.0..=box_side.1) * w as f64).round() as usize)
                .clamp(1, w);
            let y0 = rng.random_range(0..=h - bh);
            let x0 = rng.random_range(0..=w - bw);
            for y in 0..h {
                for x in 0..w {
                    let inside = (y0..y0 + bh).contains(&y) && (x0..x0 + bw).contains(&x);
                    v.push(if inside { 0.0 } else { 1.0 });
                }
            }
        }
    }
    tensor::from_vec(v, [b, 1, h, w], device)
}

/// The consistency-distillation pair for clean images x0: the student's input (x_{n+1}, σ_{n+1})
/// and the target's input (x̂_n, σ_n) after one Heun step of the teacher, both per image.
pub fn consistency_pair(
    teacher: &EdmUNet,
    x0: Tensor<4>,
    grid: &[f64],
    rng: &mut Rng,
) -> ((Tensor<4>, Vec<f64>), (Tensor<4>, Vec<f64>)) {
    let [b, c, h, w] = x0.dims();
    let device = x0.device();
    let n: Vec<usize> = (0..b)
        .map(|_| rng.random_range(0..grid.len() - 1))
        .collect();
    let s_hi: Vec<f64> = n.iter().map(|&i| grid[i + 1]).collect();
    let s_lo: Vec<f64> = n.iter().map(|&i| grid[i]).collect();
    let col = |v: &[f64]| tensor::from_f64(v, [b, 1, 1, 1], &device);
    let vec1 = |v: &[f64]| tensor::from_f64(v, [b], &device);
    let x = x0 + tensor::normal(rng, [b, c, h, w], &device) * col(&s_hi);
    let d1 = (x.clone() - teacher.denoise(x.clone(), None, vec1(&s_hi))) / col(&s_hi);
    let dt = col(&s_lo) - col(&s_hi);
    let euler = x.clone() + d1.clone() * dt.clone();
    let d2 = (euler.clone() - teacher.denoise(euler, None, vec1(&s_lo))) / col(&s_lo);
    let x_lo = x.clone() + (d1 + d2) * dt.mul_scalar(0.5);
    ((x, s_hi), (x_lo, s_lo))
}

/// The ascending Karras grid σ_min = grid[0] < … < grid[N−1] = σ_max (the top distilled).
pub fn consistency_grid(levels: usize, sigma_min: f64, sigma_max: f64) -> Vec<f64> {
    let mut g = schedule::karras(levels, sigma_min, sigma_max, 7.0);
    g.reverse();
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::{Downsample, Mask, Operator};

    /// μ⋆ of the per-image training formulas equals the operators' own solve.
    #[test]
    fn eps_inputs_match_operator_solves() {
        let device = crate::backend::cpu().device;
        let mut rng = tensor::rng(3);
        let x0 = tensor::normal(&mut rng, [1, 1, 8, 8], &device);
        for (family, sigma) in [
            (EpsOperator::Downsample(2), 0.7),
            (EpsOperator::Downsample(2), 30.0),
            (EpsOperator::Mask, 0.3),
        ] {
            let mut r1 = tensor::rng(9);
            let (mu, obs) = eps_inputs(
                x0.clone(),
                &[sigma],
                family,
                (0.05, 0.05),
                (0.5, 0.5),
                (0.5, 0.5),
                &mut r1,
            );
            // Replay the same draws to get x_t and the operator.
            let mut r2 = tensor::rng(9);
            let _sy: f64 = r2.random();
            let x_t = x0.clone() + tensor::normal(&mut r2, [1, 1, 8, 8], &device).mul_scalar(sigma);
            let op: Box<dyn Operator> = match family {
                EpsOperator::Downsample(f) => Box::new(Downsample::new([1, 8, 8], f).unwrap()),
                EpsOperator::Mask => {
                    let seen: Vec<f32> = tensor::to_vec(&obs)
                        .unwrap()
                        .iter()
                        .map(|v| if *v != 0.0 { 1.0 } else { 0.0 })
                        .collect();
                    Box::new(Mask::from_array([1, 8, 8], &[8, 8], seen, &device).expect("mask"))
                }
            };
            let y = match family {
                EpsOperator::Mask => obs.clone(),
                EpsOperator::Downsample(_) => op.forward(obs.clone()),
            };
            let rhs = x_t.div_scalar(sigma * sigma) + op.adjoint(y).div_scalar(0.0025);
            let want = op.solve_shifted(1.0 / (sigma * sigma), 0.05, rhs);
            let (a, b) = (tensor::to_vec(&mu).unwrap(), tensor::to_vec(&want).unwrap());
            // Relative to the size of μ⋆: at large σ the operator's generic solve loses digits
            // in f32 (its right-hand side mixes x/σ² with the far larger Aᵀy/σ_y²).
            let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .zip(&b)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f32::max);
            assert!(
                err < 1e-3 * scale,
                "{family:?} σ={sigma}: max |Δμ⋆| = {err}, |μ⋆| ≤ {scale}"
            );
        }
    }
}
