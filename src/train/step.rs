//! One training step: the batch each task asks the network about, and the loss's gradients
//! with respect to the weights. On the `flex` backend they come from the CPU U-Net's backward
//! pass (src/priors/unet_cpu/grads.rs), which sampling's kernels make several times faster than
//! burn's autodiff; elsewhere (wgpu, or pictures that need edge padding) from burn's autodiff.
//! Both give the same numbers to float rounding (tests/train.rs).

use super::config::TrainConfig;
use super::data::ImageSet;
use super::tasks::{self, Task};
use crate::error::{Error, Result};
use crate::priors::unet::EdmUNet;
use crate::priors::unet_cpu::{CpuNet, Keep};
use crate::tensor::{self, Rng};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rand::RngExt;

/// What one step asks of the network, on the inner (non-autodiff) device: noisy images `x`
/// at per-image `sigma`, optional conditioning channels, and the `target` the loss compares
/// with (mean squared error).
pub struct StepBatch {
    pub x: Tensor<4>,
    pub cond: Option<Tensor<4>>,
    pub sigma: Vec<f64>,
    pub target: Tensor<4>,
    /// The loss compares the denoiser's output D = c_skip·x + c_out·F with the target (true),
    /// or the raw output F with the effective target (target − c_skip·x)/c_out (false: EDM's
    /// weighting λ(σ) = 1/c_out²).
    pub denoised: bool,
}

/// A minibatch: clean images [B, C, H, W] from random indices, optionally flipped.
fn images(set: &ImageSet, n: usize, hflip: bool, rng: &mut Rng, device: &Device) -> Tensor<4> {
    let [c, h, w] = set.shape;
    let d = c * h * w;
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        let img = set.image(rng.random_range(0..set.len()));
        if hflip && rng.random::<bool>() {
            for ch in 0..c {
                for y in 0..h {
                    for x in (0..w).rev() {
                        v.push(img[ch * h * w + y * w + x]);
                    }
                }
            }
        } else {
            v.extend_from_slice(img);
        }
    }
    tensor::from_vec(v, [n, c, h, w], device)
}

fn sample_sigmas(cfg: &TrainConfig, n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n)
        .map(|_| (cfg.p_mean + cfg.p_std * tensor::gaussian(rng)).exp())
        .collect()
}

/// The task's batch for this step. `teacher` and `grid` serve consistency distillation, whose
/// target is the student itself without gradient (`model`).
pub fn make_batch(
    cfg: &TrainConfig,
    set: &ImageSet,
    model: &EdmUNet,
    teacher: Option<&EdmUNet>,
    grid: &[f64],
    rng: &mut Rng,
    device: &Device,
) -> Result<StepBatch> {
    let x0 = images(set, cfg.batch, cfg.hflip, rng, device);
    let [b, c, h, w] = x0.dims();
    Ok(match &cfg.task {
        Task::Denoiser => {
            let sigma = sample_sigmas(cfg, b, rng);
            let noise = tensor::normal(rng, [b, c, h, w], device);
            let x = x0.clone() + noise * tensor::from_f64(&sigma, [b, 1, 1, 1], device);
            StepBatch {
                x,
                cond: None,
                sigma,
                target: x0,
                denoised: false,
            }
        }
        Task::Eps {
            operators,
            sigma_y,
            missing,
            box_side,
        } => {
            let sigma = sample_sigmas(cfg, b, rng);
            let family = operators[rng.random_range(0..operators.len())];
            let (mu, obs) = tasks::eps_inputs(
                x0.clone(),
                &sigma,
                family,
                *sigma_y,
                *missing,
                *box_side,
                rng,
            );
            StepBatch {
                x: mu,
                cond: Some(obs),
                sigma,
                target: x0,
                denoised: false,
            }
        }
        Task::Consistency { .. } => {
            let teacher = teacher.ok_or_else(|| {
                Error::invalid("task", "Consistency needs init_from (the teacher)")
            })?;
            let ((x_hi, s_hi), (x_lo, s_lo)) = tasks::consistency_pair(teacher, x0, grid, rng);
            let student = model.valid().with_cpu_inference(device);
            let target = student.denoise(x_lo, None, tensor::from_f64(&s_lo, [b], device));
            StepBatch {
                x: x_hi,
                cond: None,
                sigma: s_hi,
                target,
                denoised: true,
            }
        }
    })
}

/// The loss and its gradients for `model` (on the autodiff device): the CPU path on flex,
/// burn's autodiff elsewhere.
pub fn gradients(
    model: &EdmUNet,
    sb: &StepBatch,
    device: &Device,
) -> Result<(f64, GradientsParams)> {
    match cpu_gradients(model, sb, device)? {
        Some(r) => Ok(r),
        None => burn_gradients(model, sb),
    }
}

/// The loss through burn's autodiff.
pub fn burn_gradients(model: &EdmUNet, sb: &StepBatch) -> Result<(f64, GradientsParams)> {
    let ad = sb.x.device().autodiff();
    let b = sb.sigma.len();
    let x = sb.x.clone().autodiff();
    let target = sb.target.clone().autodiff();
    let sigma = tensor::from_f64(&sb.sigma, [b], &ad);
    let (f, c_skip, c_out) = model.raw(x.clone(), sb.cond.clone().map(|c| c.autodiff()), sigma);
    let loss = if sb.denoised {
        (x * c_skip + f * c_out - target).square().mean()
    } else {
        (f - (target - x * c_skip) / c_out).square().mean()
    };
    let value = tensor::to_vec(&loss.clone().without_autodiff())?
        .first()
        .copied()
        .unwrap_or(f32::NAN);
    let grads = GradientsParams::from_grads(loss.backward(), model);
    Ok((f64::from(value), grads))
}

/// The loss through the CPU U-Net's backward pass; None where it does not apply (another
/// device, or a picture size the network would pad).
pub fn cpu_gradients(
    model: &EdmUNet,
    sb: &StepBatch,
    device: &Device,
) -> Result<Option<(f64, GradientsParams)>> {
    let [b, c, h, w] = sb.x.dims();
    let m = model.size_multiple();
    if *device != Device::flex() || h % m != 0 || w % m != 0 || model.image_channels != c {
        return Ok(None);
    }
    let Some(net) = CpuNet::new(&model.net) else {
        return Ok(None);
    };
    let xv = tensor::to_vec(&sb.x)?;
    let tv = tensor::to_vec(&sb.target)?;
    let cond = match &sb.cond {
        Some(t) => Some((tensor::to_vec(t)?, t.dims()[1])),
        None => None,
    };
    let pre: Vec<_> = sb.sigma.iter().map(|s| model.precond(*s as f32)).collect();
    let c_in: Vec<f32> = pre.iter().map(|p| p.c_in).collect();
    let c_noise: Vec<f32> = pre.iter().map(|p| p.c_noise).collect();
    let cond_ref = cond.as_ref().map(|(v, k)| (v.as_slice(), *k));
    let (inp, shape) = model.host_input(&xv, [b, c, h, w], cond_ref, &c_in);
    let ((f, _), tapes) = net.forward_tape(&inp, shape, &c_noise, Keep::ParamGrad);
    // residual r = a·F + r0 per pixel; loss = mean r²; ∂loss/∂F = 2·a·r / N.
    let per = c * h * w;
    let n = (b * per) as f64;
    let mut df = vec![0.0f32; b * per];
    let mut loss = 0.0f64;
    for (k, p) in pre.iter().enumerate() {
        for i in k * per..(k + 1) * per {
            let (a, r) = if sb.denoised {
                (p.c_out, p.c_skip * xv[i] + p.c_out * f[i] - tv[i])
            } else {
                (1.0, f[i] - (tv[i] - p.c_skip * xv[i]) / p.c_out)
            };
            loss += f64::from(r) * f64::from(r);
            df[i] = (2.0 * f64::from(a) * f64::from(r) / n) as f32;
        }
    }
    let g = net.backward_params(&tapes, &df);
    Ok(Some((loss / n, net.layout.to_gradients(&g, device))))
}
