//! A small convolutional U-Net F_θ(x, c_noise) with EDM preconditioning around it
//! (Karras et al. 2022): D(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, ln(σ)/4).
//!
//! Shapes: `x` is [B, C, H, W] with C = `image_channels`; optional conditioning channels
//! (`cond_channels`, for EPS's six-channel denoiser) are concatenated after the image. Any H, W
//! works: the input is edge-padded up to a multiple of 2^(levels−1) and the output cropped back,
//! so the network is fully convolutional. σ is per sample: a [B] tensor.

use super::Pullback;
use super::unet_cpu::{CpuNet, Keep};
use crate::tensor;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Architecture, stored in the model card so a file can be rebuilt without the code's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetConfig {
    /// Channels of the image the denoiser restores (1 grey, 3 colour).
    pub image_channels: usize,
    /// Extra input channels (EPS fine-tuning: μ⋆ and the observation image). Zero for a prior.
    pub cond_channels: usize,
    /// Channels at full resolution.
    pub base_channels: usize,
    /// Channel multiplier per resolution level; each level after the first halves H and W.
    pub channel_mult: Vec<usize>,
    /// Residual blocks per level in the encoder and in the decoder.
    pub res_blocks: usize,
    /// Width of the noise-level embedding.
    pub emb_dim: usize,
    /// Standard deviation of the training data (0.5 for images in [-1, 1]).
    pub sigma_data: f64,
    /// `Some(σ_min)`: a consistency model f(x, σ) (Song et al. 2023) whose skip weights make
    /// f(x, σ_min) = x exactly; `None`: an ordinary EDM denoiser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency_sigma_min: Option<f64>,
}

impl UNetConfig {
    /// Multiply-adds × 2 of one forward pass of the U-Net on one C×H×W image (convolutions and
    /// linear layers; normalisation and activations are a few % and not counted).
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        let cfg = self;
        let levels = cfg.channel_mult.len();
        let m = 1usize << (levels - 1);
        let (h, w) = (h.div_ceil(m) * m, w.div_ceil(m) * m);
        let ch: Vec<f64> = cfg
            .channel_mult
            .iter()
            .map(|k| (k * cfg.base_channels) as f64)
            .collect();
        let e = cfg.emb_dim as f64;
        let area = |l: usize| ((h >> l) * (w >> l)) as f64;
        let conv3 = |i: f64, o: f64, a: f64| 2.0 * 9.0 * i * o * a;
        let block = |i: f64, o: f64, a: f64| {
            let skip = if i != o { 2.0 * i * o * a } else { 0.0 };
            conv3(i, o, a) + conv3(o, o, a) + skip + 2.0 * e * o
        };
        let n = cfg.res_blocks.max(1);
        let c_in = (cfg.image_channels + cfg.cond_channels) as f64;
        let mut f = 2.0 * 64.0 * e + 2.0 * e * e + conv3(c_in, ch[0], area(0));
        let mut prev = ch[0];
        for l in 0..levels {
            for _ in 0..n {
                f += block(prev, ch[l], area(l));
                prev = ch[l];
            }
            if l + 1 < levels {
                f += conv3(ch[l], ch[l], area(l + 1));
            }
        }
        f += 2.0 * block(ch[levels - 1], ch[levels - 1], area(levels - 1));
        for l in (0..levels).rev() {
            for r in 0..n {
                let i = if r == 0 { 2.0 * ch[l] } else { ch[l] };
                f += block(i, ch[l], area(l));
            }
            if l > 0 {
                f += conv3(ch[l], ch[l - 1], area(l - 1));
            }
        }
        f + conv3(ch[0], cfg.image_channels as f64, area(0))
    }
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            image_channels: 1,
            cond_channels: 0,
            base_channels: 32,
            channel_mult: vec![1, 2, 2],
            res_blocks: 1,
            emb_dim: 128,
            sigma_data: 0.5,
            consistency_sigma_min: None,
        }
    }
}

const FOURIER: usize = 32;

fn conv3(i: usize, o: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn norm(c: usize, device: &Device) -> GroupNorm {
    // 8 groups when the channel count allows (GroupNorm needs divisibility).
    let g = [8, 4, 2, 1]
        .into_iter()
        .find(|g| c.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(g, c).init(device)
}

/// GroupNorm → SiLU → conv, plus the noise embedding as a per-channel shift, twice; residual.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub(super) norm1: GroupNorm,
    pub(super) conv1: Conv2d,
    pub(super) emb: Linear,
    pub(super) norm2: GroupNorm,
    pub(super) conv2: Conv2d,
    pub(super) skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(i: usize, o: usize, emb_dim: usize, device: &Device) -> Self {
        Self {
            norm1: norm(i, device),
            conv1: conv3(i, o, device),
            emb: LinearConfig::new(emb_dim, o).init(device),
            norm2: norm(o, device),
            conv2: conv3(o, o, device),
            skip: (i != o).then(|| Conv2dConfig::new([i, o], [1, 1]).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let [b, _, _, _] = x.dims();
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let o = h.dims()[1];
        let h = h + self.emb.forward(emb).reshape([b, o, 1, 1]);
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let s = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        (s + h).mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
    }
}

/// The raw network F_θ (no preconditioning).
#[derive(Module, Debug)]
pub struct UNet {
    pub(super) emb1: Linear,
    pub(super) emb2: Linear,
    pub(super) conv_in: Conv2d,
    pub(super) enc: Vec<ResBlock>,
    pub(super) down: Vec<Conv2d>,
    pub(super) mid1: ResBlock,
    pub(super) mid2: ResBlock,
    pub(super) dec: Vec<ResBlock>,
    pub(super) up: Vec<Conv2d>,
    pub(super) norm_out: GroupNorm,
    pub(super) conv_out: Conv2d,
}

impl UNet {
    pub fn new(config: &UNetConfig, device: &Device) -> Self {
        let ch: Vec<usize> = config
            .channel_mult
            .iter()
            .map(|m| m * config.base_channels)
            .collect();
        let e = config.emb_dim;
        let levels = ch.len();
        let n = config.res_blocks.max(1);
        let mut enc = vec![];
        let mut down = vec![];
        let mut prev = config.base_channels;
        for (l, &c) in ch.iter().enumerate() {
            for _ in 0..n {
                enc.push(ResBlock::new(prev, c, e, device));
                prev = c;
            }
            if l + 1 < levels {
                down.push(
                    Conv2dConfig::new([c, c], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                );
            }
        }
        let last = ch[levels - 1];
        let mut dec = vec![];
        let mut up = vec![];
        for l in (0..levels).rev() {
            for r in 0..n {
                let input = if r == 0 { 2 * ch[l] } else { ch[l] };
                dec.push(ResBlock::new(input, ch[l], e, device));
            }
            if l > 0 {
                up.push(conv3(ch[l], ch[l - 1], device));
            }
        }
        Self {
            emb1: LinearConfig::new(2 * FOURIER, e).init(device),
            emb2: LinearConfig::new(e, e).init(device),
            conv_in: conv3(
                config.image_channels + config.cond_channels,
                config.base_channels,
                device,
            ),
            enc,
            down,
            mid1: ResBlock::new(last, last, e, device),
            mid2: ResBlock::new(last, last, e, device),
            dec,
            up,
            norm_out: norm(ch[0], device),
            conv_out: conv3(ch[0], config.image_channels, device),
        }
    }

    fn levels(&self) -> usize {
        self.down.len() + 1
    }

    /// F_θ(x, c_noise): x [B, C_in, H, W] with H, W multiples of 2^(levels−1); c_noise [B].
    pub fn forward(&self, x: Tensor<4>, c_noise: Tensor<1>) -> Tensor<4> {
        let [b] = c_noise.dims();
        let device = x.device();
        // Fourier features of c_noise, frequencies geometric in [1, 100].
        let freqs: Vec<f32> = (0..FOURIER)
            .map(|i| (100f64.powf(i as f64 / (FOURIER - 1) as f64)) as f32)
            .collect();
        let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, FOURIER]);
        let arg = c_noise.reshape([b, 1]) * freqs;
        let feat = Tensor::cat(vec![arg.clone().cos(), arg.sin()], 1);
        let emb = silu(self.emb2.forward(silu(self.emb1.forward(feat))));

        let levels = self.levels();
        let n = self.enc.len() / levels;
        let mut h = self.conv_in.forward(x);
        let mut skips = Vec::with_capacity(levels);
        for l in 0..levels {
            for r in 0..n {
                h = self.enc[l * n + r].forward(h, emb.clone());
            }
            skips.push(h.clone());
            if l + 1 < levels {
                h = self.down[l].forward(h);
            }
        }
        h = self.mid1.forward(h, emb.clone());
        h = self.mid2.forward(h, emb.clone());
        for (i, l) in (0..levels).rev().enumerate() {
            for r in 0..n {
                if r == 0 {
                    h = Tensor::cat(vec![h, skips[l].clone()], 1);
                }
                h = self.dec[i * n + r].forward(h, emb.clone());
            }
            if l > 0 {
                h = self.up[i].forward(upsample2(h));
            }
        }
        self.conv_out.forward(silu(self.norm_out.forward(h)))
    }
}

/// Nearest-neighbour 2× upsampling.
pub(super) fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// Pads H and W at the bottom/right by repeating the edge row/column, up to multiples of `m`.
fn pad_edge(x: Tensor<4>, m: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let (ph, pw) = ((m - h % m) % m, (m - w % m) % m);
    let mut x = x;
    if ph > 0 {
        let edge = x.clone().slice([0..b, 0..c, h - 1..h, 0..w]);
        x = Tensor::cat(vec![x, edge.expand([b, c, ph, w])], 2);
    }
    if pw > 0 {
        let hh = h + ph;
        let edge = x.clone().slice([0..b, 0..c, 0..hh, w - 1..w]);
        x = Tensor::cat(vec![x, edge.expand([b, c, hh, pw])], 3);
    }
    x
}

/// EDM's preconditioning at one σ: D = c_skip·x + c_out·F(c_in·x, c_noise).
#[derive(Debug, Clone, Copy)]
pub struct Precond {
    pub c_in: f32,
    pub c_skip: f32,
    pub c_out: f32,
    pub c_noise: f32,
}

/// The network with its preconditioning: a denoiser D(x, σ).
#[derive(Module, Debug)]
pub struct EdmUNet {
    pub net: UNet,
    #[module(skip)]
    pub sigma_data: f64,
    #[module(skip)]
    pub image_channels: usize,
    #[module(skip)]
    pub consistency_sigma_min: Option<f64>,
    /// The CPU inference path (a copy of the weights), set by [`EdmUNet::with_cpu_inference`]
    /// for a model that only evaluates; None for one that trains (it would go stale).
    #[module(skip)]
    pub cpu: Option<Arc<CpuNet>>,
}

impl EdmUNet {
    pub fn new(config: &UNetConfig, device: &Device) -> Self {
        Self {
            net: UNet::new(config, device),
            sigma_data: config.sigma_data,
            image_channels: config.image_channels,
            consistency_sigma_min: config.consistency_sigma_min,
            cpu: None,
        }
    }

    /// Evaluations without autodiff on the `flex` backend go through [`CpuNet`] (same outputs,
    /// a fraction of the time: docs/engine-profile.md); gradients and other devices still use
    /// burn. Only for a model whose weights no longer change.
    pub fn with_cpu_inference(mut self, device: &Device) -> Self {
        let flex = *device == Device::flex();
        self.cpu = flex.then(|| CpuNet::new(&self.net).map(Arc::new)).flatten();
        self
    }

    /// D(x, σ) and its pullback on the CPU path (None when it does not apply: no CPU path, or
    /// x carries autodiff). The preconditioning is applied on the host in f32, as burn does.
    pub fn denoise_vjp(
        &self,
        x: &Tensor<4>,
        cond: Option<&Tensor<4>>,
        sigma: f64,
    ) -> Option<(Tensor<4>, Pullback)> {
        let cpu = self.cpu.clone().filter(|_| !x.is_autodiff())?;
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let xv = tensor::to_vec(x).ok()?;
        let cond_v = match cond {
            Some(t) => Some((tensor::to_vec(t).ok()?, t.dims()[1])),
            None => None,
        };
        let Precond {
            c_in,
            c_skip,
            c_out,
            c_noise,
        } = self.precond(sigma as f32);
        let cond_ref = cond_v.as_ref().map(|(v, k)| (v.as_slice(), *k));
        let (inp, [_, ci, hp, wp]) = self.host_input(&xv, [b, c, h, w], cond_ref, &vec![c_in; b]);
        let c_noise = vec![c_noise; b];
        let ((f, _), tapes) = cpu.forward_tape(&inp, [b, ci, hp, wp], &c_noise, Keep::InputGrad);
        let co = self.image_channels;
        let mut d = vec![0.0f32; b * c * h * w];
        for k in 0..b {
            for ch in 0..c.min(co) {
                for y in 0..h {
                    for xx in 0..w {
                        let i = ((k * c + ch) * h + y) * w + xx;
                        let fi = ((k * co + ch) * hp + y) * wp + xx;
                        d[i] = xv[i] * c_skip + f[fi] * c_out;
                    }
                }
            }
        }
        let out = tensor::from_vec(d, [b, c, h, w], &device);
        let pullback: Pullback = Box::new(move |v: Tensor<4>| {
            let vv = tensor::to_vec(&v)?;
            let mut df = vec![0.0f32; b * co * hp * wp];
            for k in 0..b {
                for ch in 0..c.min(co) {
                    for y in 0..h {
                        for xx in 0..w {
                            df[((k * co + ch) * hp + y) * wp + xx] =
                                vv[((k * c + ch) * h + y) * w + xx] * c_out;
                        }
                    }
                }
            }
            let din = cpu.backward(&tapes, &df);
            // dx = v·c_skip + c_in · (the padding's adjoint: padded cells add onto the edge).
            let mut dx: Vec<f32> = vv.iter().map(|g| g * c_skip).collect();
            for k in 0..b {
                for ch in 0..c {
                    let src = &din[(k * ci + ch) * hp * wp..][..hp * wp];
                    let dst = &mut dx[(k * c + ch) * h * w..][..h * w];
                    for y in 0..hp {
                        for xx in 0..wp {
                            dst[y.min(h - 1) * w + xx.min(w - 1)] += c_in * src[y * wp + xx];
                        }
                    }
                }
            }
            Ok(tensor::from_vec(dx, [b, c, h, w], &device))
        });
        Some((out, pullback))
    }

    /// Picture sides the network takes without padding are multiples of this.
    pub fn size_multiple(&self) -> usize {
        1 << (self.net.levels() - 1)
    }

    /// The preconditioning at σ in f32, as the CPU path applies it.
    pub fn precond(&self, sigma: f32) -> Precond {
        let (sd, s) = (self.sigma_data as f32, sigma);
        let s2 = s * s + sd * sd;
        let shifted = s - self.consistency_sigma_min.unwrap_or(0.0) as f32;
        let c_skip = match self.consistency_sigma_min {
            None => sd * sd / s2,
            Some(_) => sd * sd / (shifted * shifted + sd * sd),
        };
        Precond {
            c_in: 1.0 / s2.sqrt(),
            c_skip,
            c_out: shifted * (1.0 / s2.sqrt()) * sd,
            c_noise: s.ln() / 4.0,
        }
    }

    /// The network's input on the host: each image x [B, C, H, W] times its `c_in`, then the
    /// conditioning channels (data, channels), edge-padded to multiples of 2^(levels−1); with
    /// its shape.
    pub fn host_input(
        &self,
        xv: &[f32],
        [b, c, h, w]: [usize; 4],
        cond: Option<(&[f32], usize)>,
        c_in: &[f32],
    ) -> (Vec<f32>, [usize; 4]) {
        let m = self.size_multiple();
        let (hp, wp) = (h.div_ceil(m) * m, w.div_ceil(m) * m);
        let cc = cond.map_or(0, |(_, k)| k);
        let ci = c + cc;
        let mut inp = vec![0.0f32; b * ci * hp * wp];
        for k in 0..b {
            for ch in 0..ci {
                let (src, scale) = match cond {
                    Some((cv, _)) if ch >= c => (&cv[(k * cc + ch - c) * h * w..][..h * w], 1.0),
                    _ => (&xv[(k * c + ch) * h * w..][..h * w], c_in[k]),
                };
                let dst = &mut inp[(k * ci + ch) * hp * wp..][..hp * wp];
                for y in 0..hp {
                    for xx in 0..wp {
                        dst[y * wp + xx] = src[y.min(h - 1) * w + xx.min(w - 1)] * scale;
                    }
                }
            }
        }
        (inp, [b, ci, hp, wp])
    }

    /// F_θ on the CPU path when it applies, else through burn.
    fn forward_net(&self, x: Tensor<4>, c_noise: Tensor<1>) -> Tensor<4> {
        if let Some(cpu) = self.cpu.as_ref().filter(|_| !x.is_autodiff()) {
            let device = x.device();
            let shape = x.dims();
            if let (Ok(xv), Ok(cn)) = (tensor::to_vec(&x), tensor::to_vec(&c_noise)) {
                let (out, out_shape) = cpu.forward(&xv, shape, &cn);
                return tensor::from_vec(out, out_shape, &device);
            }
        }
        self.net.forward(x, c_noise)
    }

    /// The same network with `extra` more input channels whose first-layer weights are zero, so
    /// it computes exactly what it computed before (EPS fine-tuning starts from the prior).
    pub fn widen_input(mut self, extra: usize) -> Self {
        if extra == 0 {
            return self;
        }
        self.cpu = None;
        self.net.conv_in.weight = self.net.conv_in.weight.map(|w| {
            let [o, _, kh, kw] = w.dims();
            let zeros = Tensor::<4>::zeros([o, extra, kh, kw], &w.device());
            Tensor::cat(vec![w, zeros], 1)
        });
        self
    }

    /// Raw output F and the weights (c_skip, c_out) as [B,1,1,1] tensors, for the training loss.
    /// `x` [B, C, H, W] noisy images; `cond` optional extra channels; `sigma` [B].
    pub fn raw(
        &self,
        x: Tensor<4>,
        cond: Option<Tensor<4>>,
        sigma: Tensor<1>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, _, h, w] = x.dims();
        let sd2 = self.sigma_data * self.sigma_data;
        let s2 = sigma.clone().square().add_scalar(sd2);
        let c_in = s2.clone().sqrt().recip().reshape([b, 1, 1, 1]);
        let (c_skip, c_out) = match self.consistency_sigma_min {
            None => (
                s2.clone().recip().mul_scalar(sd2),
                (sigma.clone() * s2.clone().sqrt().recip()).mul_scalar(self.sigma_data),
            ),
            // c_skip = σ_d²/((σ−σ_min)² + σ_d²), c_out = σ_d(σ−σ_min)/√(σ² + σ_d²).
            Some(lo) => {
                let shifted = sigma.clone().sub_scalar(lo);
                (
                    shifted
                        .clone()
                        .square()
                        .add_scalar(sd2)
                        .recip()
                        .mul_scalar(sd2),
                    (shifted * s2.clone().sqrt().recip()).mul_scalar(self.sigma_data),
                )
            }
        };
        let (c_skip, c_out) = (c_skip.reshape([b, 1, 1, 1]), c_out.reshape([b, 1, 1, 1]));
        let c_noise = sigma.log().div_scalar(4.0);
        let mut input = x * c_in;
        if let Some(cond) = cond {
            input = Tensor::cat(vec![input, cond], 1);
        }
        let m = 1usize << (self.net.levels() - 1);
        let f = self.forward_net(pad_edge(input, m), c_noise);
        let c = self.image_channels;
        let f = f.slice([0..b, 0..c, 0..h, 0..w]);
        (f, c_skip, c_out)
    }

    /// D(x, σ) for a per-sample σ [B].
    pub fn denoise(&self, x: Tensor<4>, cond: Option<Tensor<4>>, sigma: Tensor<1>) -> Tensor<4> {
        let (f, c_skip, c_out) = self.raw(x.clone(), cond, sigma);
        x * c_skip + f * c_out
    }
}
