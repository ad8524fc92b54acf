//! The U-Net's forward pass, and its vector-Jacobian product with respect to the input, on the
//! CPU without burn, for sampling on the `flex` backend: the
//! profile of burn flex (docs/engine-profile.md) puts most of an NFE outside the GEMM kernel —
//! per-call layout conversions, single-threaded element-wise passes, an unfused SiLU calling
//! scalar `expf`, zero-filling — and gains nothing from a second core. Here each image of the
//! batch runs the whole network on one core (images in parallel with rayon; a single image
//! splits its convolutions instead), 3×3 stride-1 convolutions are direct AVX2 kernels
//! (direct.rs), the others im2col + the `gemm` crate (the kernels burn flex itself uses), and
//! GroupNorm, SiLU and the residual arithmetic are fused single passes.
//!
//! The VJP replays the network backwards from a tape of what the forward kept (normalised
//! activations and group statistics; convolution inputs are not needed, the weights are
//! constants). Outputs and VJPs equal burn's to ~1e-6 (tests/unet_cpu.rs).
//! [`super::unet::EdmUNet`] takes this path only on the flex device and for tensors without
//! autodiff; other devices go through burn. Training on flex uses it too, with the weights'
//! gradients ([`CpuNet::backward_params`], grads.rs): equal to burn autodiff's to ~1e-5
//! (tests/train.rs).

pub mod adm;
pub mod adm_back;
mod conv;
mod direct;
mod grads;
mod kernels;
mod layers;

use super::unet::{ResBlock, UNet};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use conv::Conv;
pub use grads::Layout;
use grads::{ParamGrads, silu_grad};
pub use layers::Keep;
use layers::{Act, Block, BlockTape, Lin, Norm, NormTape, per_image, silu_in_place};
use rayon::prelude::*;

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
    /// Where each weight's gradient lies in [`CpuNet::backward_params`]'s buffer.
    pub layout: Layout,
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
    /// With [`Keep::ParamGrad`]: what the weights' gradients need beyond the blocks' tapes.
    params: Option<ParamTape>,
}

/// The inputs of the convolutions outside the blocks, and the embedding's activations.
struct ParamTape {
    x: Act,
    down_in: Vec<Act>,
    up_in: Vec<Act>,
    out_in: Act,
    emb: Embedding,
}

/// The noise embedding silu(emb2(silu(emb1(feat)))) with its pre-activations.
struct Embedding {
    feat: Vec<f32>,
    a1: Vec<f32>,
    a2: Vec<f32>,
    out: Vec<f32>,
}

fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Option<Vec<f32>> {
    crate::tensor::to_vec(&t).ok()
}

fn conv(c: &Conv2d, lay: &mut Layout) -> Option<Conv> {
    let w = c.weight.val();
    let [o, i, k, _] = w.dims();
    let b = match &c.bias {
        Some(b) => host(b.val())?,
        None => vec![0.0; o],
    };
    let g = lay.take(Some(c.weight.id), &[o, i, k, k]);
    lay.take(c.bias.as_ref().map(|b| b.id), &[o]);
    Some(Conv::new(host(w)?, b, (i, o, k), c.stride[0], g))
}

fn norm(n: &GroupNorm, lay: &mut Layout) -> Option<Norm> {
    let c = n.num_channels;
    let g = lay.take(n.gamma.as_ref().map(|p| p.id), &[c]);
    lay.take(n.beta.as_ref().map(|p| p.id), &[c]);
    Some(Norm {
        g,
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

fn lin(l: &Linear, lay: &mut Layout) -> Option<Lin> {
    let w = l.weight.val();
    let [i, o] = w.dims();
    let b = match &l.bias {
        Some(b) => host(b.val())?,
        None => vec![0.0; o],
    };
    let g = lay.take(Some(l.weight.id), &[i, o]);
    lay.take(l.bias.as_ref().map(|b| b.id), &[o]);
    Some(Lin {
        w: host(w)?,
        b,
        i,
        o,
        g,
    })
}

fn block(r: &ResBlock, lay: &mut Layout) -> Option<Block> {
    Some(Block {
        norm1: norm(&r.norm1, lay)?,
        conv1: conv(&r.conv1, lay)?,
        emb: lin(&r.emb, lay)?,
        norm2: norm(&r.norm2, lay)?,
        conv2: conv(&r.conv2, lay)?,
        skip: match &r.skip {
            Some(s) => Some(conv(s, lay)?),
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
        let mut lay = Layout::default();
        let l = &mut lay;
        Some(Self {
            emb1: lin(&net.emb1, l)?,
            emb2: lin(&net.emb2, l)?,
            conv_in: conv(&net.conv_in, l)?,
            enc: net.enc.iter().map(|b| block(b, l)).collect::<Option<_>>()?,
            down: net.down.iter().map(|c| conv(c, l)).collect::<Option<_>>()?,
            mid: [block(&net.mid1, l)?, block(&net.mid2, l)?],
            dec: net.dec.iter().map(|b| block(b, l)).collect::<Option<_>>()?,
            up: net.up.iter().map(|c| conv(c, l)).collect::<Option<_>>()?,
            norm_out: norm(&net.norm_out, l)?,
            conv_out: conv(&net.conv_out, l)?,
            per_level: net.enc.len() / levels,
            layout: lay,
        })
    }

    fn levels(&self) -> usize {
        self.down.len() + 1
    }

    /// Cores each image may use: one per image for many images, else all of them (the direct
    /// convolutions split any picture; GEMMs only large ones, [`Conv`]).
    fn inner_threads(b: usize) -> usize {
        let threads = rayon::current_num_threads();
        if b >= threads { 1 } else { threads }
    }

    /// F_θ(x, c_noise) for x [B, C, H, W] (H, W multiples of 2^(levels−1)), c_noise [B]; the
    /// output and its shape.
    pub fn forward(&self, x: &[f32], shape: [usize; 4], c_noise: &[f32]) -> (Vec<f32>, [usize; 4]) {
        let (out, _) = self.run(x, shape, c_noise, Keep::Nothing);
        out
    }

    /// [`CpuNet::forward`] keeping each image's tape for [`CpuNet::backward`] (`keep`
    /// [`Keep::InputGrad`]) or also for [`CpuNet::backward_params`] ([`Keep::ParamGrad`]).
    pub fn forward_tape(
        &self,
        x: &[f32],
        shape: [usize; 4],
        c_noise: &[f32],
        keep: Keep,
    ) -> ((Vec<f32>, [usize; 4]), Vec<Tape>) {
        let (out, tapes) = self.run(x, shape, c_noise, keep);
        (out, tapes.into_iter().flatten().collect())
    }

    fn run(&self, x: &[f32], shape: [usize; 4], c_noise: &[f32], keep: Keep) -> Run {
        let [b, c, h, w] = shape;
        let per = c * h * w;
        let inner = Self::inner_threads(b);
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
        let inner = Self::inner_threads(tapes.len());
        per_image(tapes.len(), |k| {
            let d = Act {
                c: self.conv_out.o,
                h,
                w,
                v: dy[k * per..(k + 1) * per].to_vec(),
            };
            self.backward_one(&tapes[k], d, inner, None).v
        })
        .concat()
    }

    /// The gradient of ⟨dy, F⟩ with respect to every weight, summed over the batch, laid out
    /// as [`CpuNet::layout`] says; the tapes must come from [`Keep::ParamGrad`].
    pub fn backward_params(&self, tapes: &[Tape], dy: &[f32]) -> Vec<f32> {
        let size = self.layout.size;
        let Some(first) = tapes.first() else {
            return vec![0.0; size];
        };
        let (_, h, w) = first.input;
        let per = self.conv_out.o * h * w;
        let inner = Self::inner_threads(tapes.len());
        // One buffer per worker, summed at the end.
        (0..tapes.len())
            .into_par_iter()
            .fold(
                || vec![0.0f32; size],
                |g, k| {
                    let t = &tapes[k];
                    let Some(p) = &t.params else {
                        return g;
                    };
                    let d = Act {
                        c: self.conv_out.o,
                        h,
                        w,
                        v: dy[k * per..(k + 1) * per].to_vec(),
                    };
                    let mut pg = ParamGrads {
                        g,
                        emb: p.emb.out.clone(),
                        demb: vec![0.0; p.emb.out.len()],
                    };
                    self.backward_one(t, d, inner, Some(&mut pg));
                    self.embedding_back(&p.emb, &pg.demb, &mut pg.g);
                    pg.g
                },
            )
            .reduce(
                || vec![0.0f32; size],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
    }

    fn embedding(&self, c_noise: f32) -> Embedding {
        const FOURIER: usize = 32;
        let mut feat = vec![0.0f32; 2 * FOURIER];
        for i in 0..FOURIER {
            let f = (100f64.powf(i as f64 / (FOURIER - 1) as f64)) as f32;
            let a = c_noise * f;
            feat[i] = a.cos();
            feat[FOURIER + i] = a.sin();
        }
        let a1 = self.emb1.apply(&feat);
        let mut e = a1.clone();
        silu_in_place(&mut e);
        let a2 = self.emb2.apply(&e);
        let mut out = a2.clone();
        silu_in_place(&mut out);
        Embedding { feat, a1, a2, out }
    }

    /// Adds the embedding layers' gradients, given the gradient `demb` of its output.
    fn embedding_back(&self, e: &Embedding, demb: &[f32], g: &mut [f32]) {
        let da2: Vec<f32> = demb
            .iter()
            .zip(&e.a2)
            .map(|(d, y)| d * silu_grad(*y))
            .collect();
        let mut s1 = e.a1.clone();
        silu_in_place(&mut s1);
        let ds1 = self.emb2.back(&s1, &da2, g);
        let da1: Vec<f32> = ds1
            .iter()
            .zip(&e.a1)
            .map(|(d, y)| d * silu_grad(*y))
            .collect();
        self.emb1.back(&e.feat, &da1, g);
    }

    fn forward_one(&self, x: Act, c_noise: f32, threads: usize, keep: Keep) -> (Act, Option<Tape>) {
        let embedding = self.embedding(c_noise);
        let emb = &embedding.out;
        let n = self.per_level;
        let input = dims(&x);
        let params = keep == Keep::ParamGrad;
        let mut h = self.conv_in.apply(&x, threads);
        let (mut enc, mut mid, mut dec) = (vec![], vec![], vec![]);
        let (mut level_sizes, mut cat_main, mut up_in) = (vec![], vec![], vec![]);
        let (mut down_acts, mut up_acts) = (vec![], vec![]);
        let mut skips: Vec<Act> = Vec::with_capacity(self.levels());
        for l in 0..self.levels() {
            for r in 0..n {
                let (o, t) = self.enc[l * n + r].apply(h, emb, threads, keep);
                h = o;
                enc.extend(t);
            }
            level_sizes.push(dims(&h));
            if l + 1 < self.levels() {
                let down = self.down[l].apply(&h, threads);
                if params {
                    down_acts.push(h.clone());
                }
                skips.push(h);
                h = down;
            } else {
                skips.push(h.clone());
            }
        }
        for m in &self.mid {
            let (o, t) = m.apply(h, emb, threads, keep);
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
                let (o, t) = self.dec[i * n + r].apply(h, emb, threads, keep);
                h = o;
                dec.extend(t);
            }
            if l > 0 {
                let u = layers::upsample2(&h);
                up_in.push(dims(&u));
                h = self.up[i].apply(&u, threads);
                if params {
                    up_acts.push(u);
                }
            }
        }
        let out_in = dims(&h);
        let (t, out_norm) = self.norm_out.apply(&h, keep != Keep::Nothing);
        let out = self.conv_out.apply(&t, threads);
        let params = params.then_some(ParamTape {
            x,
            down_in: down_acts,
            up_in: up_acts,
            out_in: t,
            emb: embedding,
        });
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
            params,
        });
        (out, tape)
    }

    /// ∂/∂x of ⟨dy, F⟩ for one image; with `pg`, the weights' gradients too (then the input's
    /// own gradient is not computed: training does not need it, and an empty Act comes back).
    fn backward_one(
        &self,
        t: &Tape,
        dy: Act,
        threads: usize,
        mut pg: Option<&mut ParamGrads>,
    ) -> Act {
        let n = self.per_level;
        let levels = self.levels();
        let (_, h, w) = t.out_in;
        let saved = t.params.as_ref().filter(|_| pg.is_some());
        let dt = self.conv_out.back(&dy, h, w, threads);
        if let (Some(p), Some(s)) = (pg.as_deref_mut(), saved) {
            self.conv_out.grad_params(&dy, &s.out_in, threads, &mut p.g);
        }
        let mut d = self.norm_out.back(&t.out_norm, &dt, sink(&mut pg));
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
                if let (Some(p), Some(s)) = (pg.as_deref_mut(), saved) {
                    self.up[i].grad_params(&d, &s.up_in[up_k], threads, &mut p.g);
                }
                d = layers::upsample2_back(&du);
            }
            for r in (0..n).rev() {
                d = self.dec[i * n + r].back(&t.dec[i * n + r], &d, threads, pg.as_deref_mut());
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
            d = self.mid[k].back(&t.mid[k], &d, threads, pg.as_deref_mut());
        }
        for l in (0..levels).rev() {
            if l + 1 < levels {
                let (_, lh, lw) = t.level_sizes[l];
                if let (Some(p), Some(s)) = (pg.as_deref_mut(), saved) {
                    self.down[l].grad_params(&d, &s.down_in[l], threads, &mut p.g);
                }
                d = self.down[l].back(&d, lh, lw, threads);
            }
            if let Some(s) = &dskip[l] {
                add_into(&mut d, s);
            }
            for r in (0..n).rev() {
                d = self.enc[l * n + r].back(&t.enc[l * n + r], &d, threads, pg.as_deref_mut());
            }
        }
        if let (Some(p), Some(s)) = (pg, saved) {
            self.conv_in.grad_params(&d, &s.x, threads, &mut p.g);
            return Act::zeros(0, 0, 0);
        }
        let (_, ih, iw) = t.input;
        self.conv_in.back(&d, ih, iw, threads)
    }
}

/// The flat buffer of an optional gradient sink, for the layers that take one.
fn sink<'a>(pg: &'a mut Option<&mut ParamGrads>) -> Option<&'a mut [f32]> {
    pg.as_deref_mut().map(|p| &mut p.g[..])
}
