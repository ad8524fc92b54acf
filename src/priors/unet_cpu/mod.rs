//! The U-Net's forward pass, and its vector-Jacobian product with respect to the input, on the
//! CPU without burn, for sampling on the `flex` backend: the
//! profile of burn flex (docs/engine-profile.md) puts most of an NFE outside the GEMM kernel —
//! per-call layout conversions, single-threaded element-wise passes, an unfused SiLU calling
//! scalar `expf`, zero-filling — and gains nothing from a second core. Here each image of the
//! batch runs the whole network on one core (images in parallel with rayon; a single image
//! splits its GEMMs instead), convolutions are im2col + the `gemm` crate (the kernels burn flex
//! itself uses), and GroupNorm, SiLU and the residual arithmetic are fused single passes.
//!
//! The VJP replays the network backwards from a tape of what the forward kept (normalised
//! activations and group statistics; convolution inputs are not needed, the weights are
//! constants). Outputs and VJPs equal burn's to ~1e-6 (tests/unet_cpu.rs).
//! [`super::unet::EdmUNet`] takes this path only on the flex device and for tensors without
//! autodiff; training and other devices go through burn.

mod kernels;
mod layers;

use super::unet::{ResBlock, UNet};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use layers::{Act, Block, BlockTape, Conv, Lin, Norm, NormTape, per_image, silu_in_place};

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

/// A batch's output with its shape, and each image's tape when one was kept.
type Run = ((Vec<f32>, [usize; 4]), Vec<Option<Tape>>);

/// What one image's forward pass kept for its backward pass.
pub struct Tape {
    input: (usize, usize, usize),
    enc: Vec<BlockTape>,
    /// Sizes of each level's output (the input of its down-sampling).
    level_sizes: Vec<(usize, usize, usize)>,
    mid: Vec<BlockTape>,
    dec: Vec<BlockTape>,
    /// Channels of the decoder's running activation before each concatenation with a skip.
    cat_main: Vec<usize>,
    up_in: Vec<(usize, usize, usize)>,
    out_norm: NormTape,
    out_in: (usize, usize, usize),
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

fn dims(a: &Act) -> (usize, usize, usize) {
    (a.c, a.h, a.w)
}

fn add_into(a: &mut Act, b: &Act) {
    a.v.iter_mut().zip(&b.v).for_each(|(x, y)| *x += y);
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

    /// Cores each image's GEMMs may use: one per image for many images; for few, the cores,
    /// but only for large pictures (at 28×28 and 64×64 splitting a GEMM was measured slower).
    fn inner_threads(b: usize, h: usize, w: usize) -> usize {
        let threads = rayon::current_num_threads();
        if b >= threads || h * w < 128 * 128 {
            1
        } else {
            threads
        }
    }

    /// F_θ(x, c_noise) for x [B, C, H, W] (H, W multiples of 2^(levels−1)), c_noise [B]; the
    /// output and its shape.
    pub fn forward(&self, x: &[f32], shape: [usize; 4], c_noise: &[f32]) -> (Vec<f32>, [usize; 4]) {
        let (out, _) = self.run(x, shape, c_noise, false);
        out
    }

    /// [`CpuNet::forward`] keeping each image's tape for [`CpuNet::backward`].
    pub fn forward_tape(
        &self,
        x: &[f32],
        shape: [usize; 4],
        c_noise: &[f32],
    ) -> ((Vec<f32>, [usize; 4]), Vec<Tape>) {
        let (out, tapes) = self.run(x, shape, c_noise, true);
        (out, tapes.into_iter().flatten().collect())
    }

    fn run(&self, x: &[f32], shape: [usize; 4], c_noise: &[f32], keep: bool) -> Run {
        let [b, c, h, w] = shape;
        let per = c * h * w;
        let inner = Self::inner_threads(b, h, w);
        let results = per_image(b, |k| {
            let img = Act {
                c,
                h,
                w,
                v: x[k * per..(k + 1) * per].to_vec(),
            };
            self.forward_one(img, c_noise[k], inner, keep)
        });
        let mut out = Vec::with_capacity(b * self.conv_out.o * h * w);
        let mut tapes = Vec::with_capacity(b);
        for (a, t) in results {
            out.extend_from_slice(&a.v);
            tapes.push(t);
        }
        ((out, [b, self.conv_out.o, h, w]), tapes)
    }

    /// (∂F/∂x)ᵀ dy for every image, from the tapes of [`CpuNet::forward_tape`].
    pub fn backward(&self, tapes: &[Tape], dy: &[f32]) -> Vec<f32> {
        let Some(first) = tapes.first() else {
            return vec![];
        };
        let (_, h, w) = first.input;
        let per = self.conv_out.o * h * w;
        let inner = Self::inner_threads(tapes.len(), h, w);
        per_image(tapes.len(), |k| {
            let d = Act {
                c: self.conv_out.o,
                h,
                w,
                v: dy[k * per..(k + 1) * per].to_vec(),
            };
            self.backward_one(&tapes[k], d, inner).v
        })
        .concat()
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

    fn forward_one(&self, x: Act, c_noise: f32, threads: usize, keep: bool) -> (Act, Option<Tape>) {
        let emb = self.embedding(c_noise);
        let n = self.per_level;
        let input = dims(&x);
        let mut h = self.conv_in.apply(&x, threads);
        let (mut enc, mut mid, mut dec) = (vec![], vec![], vec![]);
        let (mut level_sizes, mut cat_main, mut up_in) = (vec![], vec![], vec![]);
        let mut skips: Vec<Act> = Vec::with_capacity(self.levels());
        for l in 0..self.levels() {
            for r in 0..n {
                let (o, t) = self.enc[l * n + r].apply(h, &emb, threads, keep);
                h = o;
                enc.extend(t);
            }
            level_sizes.push(dims(&h));
            if l + 1 < self.levels() {
                let down = self.down[l].apply(&h, threads);
                skips.push(h);
                h = down;
            } else {
                skips.push(h.clone());
            }
        }
        for m in &self.mid {
            let (o, t) = m.apply(h, &emb, threads, keep);
            h = o;
            mid.extend(t);
        }
        for (i, l) in (0..self.levels()).rev().enumerate() {
            for r in 0..n {
                if r == 0 {
                    let s = &skips[l];
                    cat_main.push(h.c);
                    h.v.extend_from_slice(&s.v);
                    h.c += s.c;
                }
                let (o, t) = self.dec[i * n + r].apply(h, &emb, threads, keep);
                h = o;
                dec.extend(t);
            }
            if l > 0 {
                let u = layers::upsample2(&h);
                up_in.push(dims(&u));
                h = self.up[i].apply(&u, threads);
            }
        }
        let out_in = dims(&h);
        let (t, out_norm) = self.norm_out.apply(&h, keep);
        let out = self.conv_out.apply(&t, threads);
        let tape = out_norm.map(|out_norm| Tape {
            input,
            enc,
            level_sizes,
            mid,
            dec,
            cat_main,
            up_in,
            out_norm,
            out_in,
        });
        (out, tape)
    }

    fn backward_one(&self, t: &Tape, dy: Act, threads: usize) -> Act {
        let n = self.per_level;
        let levels = self.levels();
        let (_, h, w) = t.out_in;
        let dt = self.conv_out.back(&dy, h, w, threads);
        let mut d = self.norm_out.back(&t.out_norm, &dt);
        // Decoder, last block first; gradients of the skips collected per level.
        let mut dskip: Vec<Option<Act>> = (0..levels).map(|_| None).collect();
        let mut up_k = t.up_in.len();
        for (i, l) in (0..levels)
            .rev()
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            if l > 0 {
                up_k -= 1;
                let (_, uh, uw) = t.up_in[up_k];
                let du = self.up[i].back(&d, uh, uw, threads);
                d = layers::upsample2_back(&du);
            }
            for r in (0..n).rev() {
                d = self.dec[i * n + r].back(&t.dec[i * n + r], &d, threads);
                if r == 0 {
                    let main = t.cat_main[i];
                    let hw = d.h * d.w;
                    let skip = Act {
                        c: d.c - main,
                        h: d.h,
                        w: d.w,
                        v: d.v[main * hw..].to_vec(),
                    };
                    d.v.truncate(main * hw);
                    d.c = main;
                    dskip[l] = Some(skip);
                }
            }
        }
        for k in (0..self.mid.len()).rev() {
            d = self.mid[k].back(&t.mid[k], &d, threads);
        }
        for l in (0..levels).rev() {
            if l + 1 < levels {
                let (_, lh, lw) = t.level_sizes[l];
                d = self.down[l].back(&d, lh, lw, threads);
            }
            if let Some(s) = &dskip[l] {
                add_into(&mut d, s);
            }
            for r in (0..n).rev() {
                d = self.enc[l * n + r].back(&t.enc[l * n + r], &d, threads);
            }
        }
        let (_, ih, iw) = t.input;
        self.conv_in.back(&d, ih, iw, threads)
    }
}
