//! The U-Net's forward pass on the CPU without burn, for inference on the `flex` backend: the
//! profile of burn flex (docs/engine-profile.md) puts most of an NFE outside the GEMM kernel —
//! per-call layout conversions, single-threaded element-wise passes, an unfused SiLU calling
//! scalar `expf`, zero-filling — and gains nothing from a second core. Here each image of the
//! batch runs the whole network on one core (images in parallel with rayon; a single image
//! splits its GEMMs instead), convolutions are im2col + the `gemm` crate (the kernels burn flex
//! itself uses), and GroupNorm, SiLU and the residual arithmetic are fused single passes.
//!
//! Same weights, same arithmetic order where it matters: outputs equal burn's to ~1e-6 (tests
//! in tests/models.rs). Gradients still go through burn: [`super::unet::EdmUNet`] uses this
//! path only for tensors without autodiff on the flex device.

use super::unet::{ResBlock, UNet};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use rayon::prelude::*;

/// A convolution as a [out, in·k·k] matrix.
#[derive(Debug)]
struct Conv {
    w: Vec<f32>,
    b: Vec<f32>,
    i: usize,
    o: usize,
    k: usize,
    stride: usize,
}

#[derive(Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    groups: usize,
    eps: f64,
}

/// A linear layer, weights [in, out] as burn stores them.
#[derive(Debug)]
struct Lin {
    w: Vec<f32>,
    b: Vec<f32>,
    i: usize,
    o: usize,
}

#[derive(Debug)]
struct Block {
    norm1: Norm,
    conv1: Conv,
    emb: Lin,
    norm2: Norm,
    conv2: Conv,
    skip: Option<Conv>,
}

/// One image's activations, [c, h, w].
struct Act {
    c: usize,
    h: usize,
    w: usize,
    v: Vec<f32>,
}

/// The network F_θ's weights, copied out of burn once.
#[derive(Debug)]
pub struct CpuNet {
    emb1: Lin,
    emb2: Lin,
    conv_in: Conv,
    enc: Vec<Block>,
    down: Vec<Conv>,
    mid: [Block; 2],
    dec: Vec<Block>,
    up: Vec<Conv>,
    norm_out: Norm,
    conv_out: Conv,
    per_level: usize,
}

fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Option<Vec<f32>> {
    crate::tensor::to_vec(&t).ok()
}

fn conv(c: &Conv2d) -> Option<Conv> {
    let w = c.weight.val();
    let [o, i, k, _] = w.dims();
    let b = match &c.bias {
        Some(b) => host(b.val())?,
        None => vec![0.0; o],
    };
    Some(Conv {
        w: host(w)?,
        b,
        i,
        o,
        k,
        stride: c.stride[0],
    })
}

fn norm(n: &GroupNorm) -> Option<Norm> {
    let c = n.num_channels;
    Some(Norm {
        gamma: match &n.gamma {
            Some(g) => host(g.val())?,
            None => vec![1.0; c],
        },
        beta: match &n.beta {
            Some(b) => host(b.val())?,
            None => vec![0.0; c],
        },
        groups: n.num_groups,
        eps: n.epsilon,
    })
}

fn lin(l: &Linear) -> Option<Lin> {
    let w = l.weight.val();
    let [i, o] = w.dims();
    let b = match &l.bias {
        Some(b) => host(b.val())?,
        None => vec![0.0; o],
    };
    Some(Lin {
        w: host(w)?,
        b,
        i,
        o,
    })
}

fn block(r: &ResBlock) -> Option<Block> {
    Some(Block {
        norm1: norm(&r.norm1)?,
        conv1: conv(&r.conv1)?,
        emb: lin(&r.emb)?,
        norm2: norm(&r.norm2)?,
        conv2: conv(&r.conv2)?,
        skip: match &r.skip {
            Some(s) => Some(conv(s)?),
            None => None,
        },
    })
}

impl CpuNet {
    /// Copies the weights out of the network (None if a weight cannot be read back).
    pub fn new(net: &UNet) -> Option<Self> {
        let levels = net.down.len() + 1;
        Some(Self {
            emb1: lin(&net.emb1)?,
            emb2: lin(&net.emb2)?,
            conv_in: conv(&net.conv_in)?,
            enc: net.enc.iter().map(block).collect::<Option<_>>()?,
            down: net.down.iter().map(conv).collect::<Option<_>>()?,
            mid: [block(&net.mid1)?, block(&net.mid2)?],
            dec: net.dec.iter().map(block).collect::<Option<_>>()?,
            up: net.up.iter().map(conv).collect::<Option<_>>()?,
            norm_out: norm(&net.norm_out)?,
            conv_out: conv(&net.conv_out)?,
            per_level: net.enc.len() / levels,
        })
    }

    fn levels(&self) -> usize {
        self.down.len() + 1
    }

    /// F_θ(x, c_noise) for x [B, C, H, W] (H, W multiples of 2^(levels−1)), c_noise [B]; the
    /// output and its shape.
    pub fn forward(&self, x: &[f32], shape: [usize; 4], c_noise: &[f32]) -> (Vec<f32>, [usize; 4]) {
        let [b, c, h, w] = shape;
        let per = c * h * w;
        let threads = rayon::current_num_threads();
        // Many images: one per core. Few: large GEMMs (big pictures) split over the cores;
        // small ones do not gain from it (measured: slower at 28×28 and 64×64).
        let inner = if b >= threads || h * w < 128 * 128 {
            1
        } else {
            threads
        };
        let outs: Vec<Vec<f32>> = (0..b)
            .into_par_iter()
            .map(|k| {
                let img = Act {
                    c,
                    h,
                    w,
                    v: x[k * per..(k + 1) * per].to_vec(),
                };
                self.forward_one(img, c_noise[k], inner).v
            })
            .collect();
        (outs.concat(), [b, self.conv_out.o, h, w])
    }

    fn embedding(&self, c_noise: f32) -> Vec<f32> {
        const FOURIER: usize = 32;
        let mut feat = vec![0.0f32; 2 * FOURIER];
        for i in 0..FOURIER {
            let f = (100f64.powf(i as f64 / (FOURIER - 1) as f64)) as f32;
            let a = c_noise * f;
            feat[i] = a.cos();
            feat[FOURIER + i] = a.sin();
        }
        let mut e = self.emb1.apply(&feat);
        silu_in_place(&mut e);
        let mut e = self.emb2.apply(&e);
        silu_in_place(&mut e);
        e
    }

    fn forward_one(&self, x: Act, c_noise: f32, threads: usize) -> Act {
        let emb = self.embedding(c_noise);
        let n = self.per_level;
        let mut h = self.conv_in.apply(&x, threads);
        let mut skips = Vec::with_capacity(self.levels());
        for l in 0..self.levels() {
            for r in 0..n {
                h = self.enc[l * n + r].apply(h, &emb, threads);
            }
            if l + 1 < self.levels() {
                let down = self.down[l].apply(&h, threads);
                skips.push(h);
                h = down;
            } else {
                skips.push(Act {
                    c: h.c,
                    h: h.h,
                    w: h.w,
                    v: h.v.clone(),
                });
            }
        }
        for m in &self.mid {
            h = m.apply(h, &emb, threads);
        }
        for (i, l) in (0..self.levels()).rev().enumerate() {
            for r in 0..n {
                if r == 0 {
                    let s = &skips[l];
                    h.v.extend_from_slice(&s.v);
                    h.c += s.c;
                }
                h = self.dec[i * n + r].apply(h, &emb, threads);
            }
            if l > 0 {
                h = self.up[i].apply(&upsample2(&h), threads);
            }
        }
        let mut t = self.norm_out.apply(&h);
        silu_in_place(&mut t.v);
        self.conv_out.apply(&t, threads)
    }
}

impl Lin {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = self.b.clone();
        for (i, xi) in x.iter().enumerate().take(self.i) {
            let row = &self.w[i * self.o..(i + 1) * self.o];
            for (o, wv) in out.iter_mut().zip(row) {
                *o += xi * wv;
            }
        }
        out
    }
}

impl Norm {
    /// GroupNorm over (channels of a group × pixels), statistics in f64.
    fn apply(&self, x: &Act) -> Act {
        let hw = x.h * x.w;
        let per_group = x.c / self.groups.max(1);
        let mut v = vec![0.0f32; x.v.len()];
        for g in 0..self.groups {
            let span = g * per_group * hw..(g + 1) * per_group * hw;
            let src = &x.v[span.clone()];
            let n = src.len() as f64;
            let mean = src.iter().map(|a| f64::from(*a)).sum::<f64>() / n;
            let var = src
                .iter()
                .map(|a| (f64::from(*a) - mean).powi(2))
                .sum::<f64>()
                / n;
            let rstd = 1.0 / (var + self.eps).sqrt();
            for cc in 0..per_group {
                let ch = g * per_group + cc;
                let scale = (rstd * f64::from(self.gamma[ch])) as f32;
                let shift =
                    (f64::from(self.beta[ch]) - mean * rstd * f64::from(self.gamma[ch])) as f32;
                let o = span.start + cc * hw;
                for (d, s) in v[o..o + hw].iter_mut().zip(&x.v[o..o + hw]) {
                    *d = s * scale + shift;
                }
            }
        }
        Act {
            c: x.c,
            h: x.h,
            w: x.w,
            v,
        }
    }
}

impl Block {
    fn apply(&self, x: Act, emb: &[f32], threads: usize) -> Act {
        let mut t = self.norm1.apply(&x);
        silu_in_place(&mut t.v);
        let mut h = self.conv1.apply(&t, threads);
        let shift = self.emb.apply(emb);
        let hw = h.h * h.w;
        for (ch, s) in shift.iter().enumerate() {
            h.v[ch * hw..(ch + 1) * hw].iter_mut().for_each(|v| *v += s);
        }
        let mut t = self.norm2.apply(&h);
        silu_in_place(&mut t.v);
        let mut h = self.conv2.apply(&t, threads);
        let k = std::f32::consts::FRAC_1_SQRT_2;
        match &self.skip {
            Some(s) => {
                let s = s.apply(&x, threads);
                for (a, b) in h.v.iter_mut().zip(&s.v) {
                    *a = (b + *a) * k;
                }
            }
            None => {
                for (a, b) in h.v.iter_mut().zip(&x.v) {
                    *a = (b + *a) * k;
                }
            }
        }
        h
    }
}

impl Conv {
    /// out = W · im2col(x) + b, zero padding k/2.
    fn apply(&self, x: &Act, threads: usize) -> Act {
        let (k, s, pad) = (self.k, self.stride, self.k / 2);
        let ho = (x.h + 2 * pad - k) / s + 1;
        let wo = (x.w + 2 * pad - k) / s + 1;
        let n = ho * wo;
        let kk = self.i * k * k;
        let col_owned;
        let col: &[f32] = if k == 1 && s == 1 {
            &x.v
        } else {
            col_owned = im2col(x, k, s, pad, ho, wo);
            &col_owned
        };
        let mut out = Vec::with_capacity(self.o * n);
        for b in &self.b {
            out.extend(std::iter::repeat_n(*b, n));
        }
        matmul_acc(&mut out, &self.w, col, self.o, n, kk, threads);
        Act {
            c: self.o,
            h: ho,
            w: wo,
            v: out,
        }
    }
}

fn im2col(x: &Act, k: usize, s: usize, pad: usize, ho: usize, wo: usize) -> Vec<f32> {
    let n = ho * wo;
    let mut col = vec![0.0f32; x.c * k * k * n];
    for ci in 0..x.c {
        let plane = &x.v[ci * x.h * x.w..(ci + 1) * x.h * x.w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut col[((ci * k + ky) * k + kx) * n..][..n];
                for oy in 0..ho {
                    let iy = (oy * s + ky) as isize - pad as isize;
                    if iy < 0 || iy >= x.h as isize {
                        continue;
                    }
                    let src = &plane[iy as usize * x.w..(iy as usize + 1) * x.w];
                    let dst = &mut row[oy * wo..(oy + 1) * wo];
                    for (ox, d) in dst.iter_mut().enumerate() {
                        let ix = (ox * s + kx) as isize - pad as isize;
                        if ix >= 0 && (ix as usize) < x.w {
                            *d = src[ix as usize];
                        }
                    }
                }
            }
        }
    }
    col
}

/// c[m×n] += a[m×k] · b[k×n], all row-major, with the `gemm` crate.
fn matmul_acc(c: &mut [f32], a: &[f32], b: &[f32], m: usize, n: usize, k: usize, threads: usize) {
    assert!(c.len() == m * n && a.len() == m * k && b.len() == k * n);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three slices hold exactly the row-major m×n, m×k and k×n matrices the
    // strides describe (checked above), and `c` does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn upsample2(x: &Act) -> Act {
    let (h2, w2) = (2 * x.h, 2 * x.w);
    let mut v = vec![0.0f32; x.c * h2 * w2];
    for ch in 0..x.c {
        for y in 0..h2 {
            let src = &x.v[(ch * x.h + y / 2) * x.w..][..x.w];
            let dst = &mut v[(ch * h2 + y) * w2..][..w2];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[i / 2];
            }
        }
    }
    Act {
        c: x.c,
        h: h2,
        w: w2,
        v,
    }
}

/// x·sigmoid(x) in place, with an exp that vectorises.
fn silu_in_place(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x /= 1.0 + exp_fast(-*x);
    }
}

/// e^x for f32 to about 2 ulp: 2^n · p(r), r = x − n ln 2 in [−ln2/2, ln2/2], a degree-6
/// polynomial; branch-free so loops over it vectorise.
#[inline(always)]
fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick (no libm call, vectorises on plain SSE2).
    const SHIFT: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let (got, want) = (f64::from(exp_fast(x)), f64::from(x).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 5e-7, "relative error {worst:e}");
    }

    #[test]
    fn conv_matches_a_direct_sum() {
        let x = Act {
            c: 2,
            h: 5,
            w: 4,
            v: (0..40).map(|i| (i as f32 * 0.37).sin()).collect(),
        };
        for stride in [1, 2] {
            let cv = Conv {
                w: (0..3 * 2 * 9).map(|i| (i as f32 * 0.11).cos()).collect(),
                b: vec![0.1, -0.2, 0.3],
                i: 2,
                o: 3,
                k: 3,
                stride,
            };
            let out = cv.apply(&x, 1);
            for o in 0..3 {
                for oy in 0..out.h {
                    for ox in 0..out.w {
                        let mut want = cv.b[o];
                        for ci in 0..2 {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (
                                        (oy * stride + ky) as isize - 1,
                                        (ox * stride + kx) as isize - 1,
                                    );
                                    if (0..5).contains(&iy) && (0..4).contains(&ix) {
                                        want += cv.w[((o * 2 + ci) * 3 + ky) * 3 + kx]
                                            * x.v[(ci * 5 + iy as usize) * 4 + ix as usize];
                                    }
                                }
                            }
                        }
                        let got = out.v[(o * out.h + oy) * out.w + ox];
                        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                    }
                }
            }
        }
    }
}
