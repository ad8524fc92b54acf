//! The imported ADM network's vector-Jacobian product with respect to its input on the CPU:
//! the forward pass keeps a tape (each normalisation's x̂ and 1/σ, each attention's q, k, v and
//! weights, the sizes), and the backward pass replays it with the same kernels (transposed
//! convolutions, fused GroupNorm+SiLU backward). The weights are constants: no weight
//! gradients. Equal to burn's autodiff to ~1e-5 (tests/checkpoints.rs).

use super::adm::{AdmCpu, Attention, Block, Res, resample};
use super::kernels::{matmul_acc, matmul_new};
use super::layers::{Act, Norm, NormTape, exp_fast, upsample2, upsample2_back};
use crate::priors::adm_layout::{AttentionOrder, Resample};

/// What one block's forward pass kept for its backward pass.
pub enum LayerTape {
    /// A convolution and the size of its input.
    Conv(usize, usize),
    Res(Box<ResTape>),
    Attention(Box<AttnTape>),
    /// Average pooling, or a stride-2 convolution: the input's size.
    Down(usize, usize),
    /// Upsampling (+ convolution): the input's size.
    Up(usize, usize),
}

pub struct ResTape {
    n1: NormTape,
    n2: NormTape,
    /// The second normalisation with this picture's scale and shift folded in.
    norm2: Norm,
    /// Size of the block's input and of its convolutions' (after resampling).
    input: (usize, usize),
    mid: (usize, usize),
}

pub struct AttnTape {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
    qkv: Vec<f32>,
    /// Each head's attention weights [T, T] (after the softmax).
    weights: Vec<Vec<f32>>,
}

/// One picture's tape.
pub struct Tape {
    input: Vec<Vec<LayerTape>>,
    middle: Vec<LayerTape>,
    output: Vec<Vec<LayerTape>>,
    /// Channels of each output block's input: (carried, from its skip connection).
    concat: Vec<(usize, usize)>,
    out_norm: NormTape,
    size: (usize, usize),
}

fn resample_back(d: Act, r: Resample) -> Act {
    match r {
        Resample::None => d,
        Resample::Down => pool2_back(&d),
        Resample::Up => upsample2_back(&d),
    }
}

/// The adjoint of 2×2 average pooling: each gradient spread over its block, ÷4.
fn pool2_back(d: &Act) -> Act {
    let (h, w) = (2 * d.h, 2 * d.w);
    let mut out = Act::zeros(d.c, h, w);
    for ch in 0..d.c {
        for y in 0..h {
            let src = &d.v[(ch * d.h + y / 2) * d.w..][..d.w];
            for (i, o) in out.v[(ch * h + y) * w..][..w].iter_mut().enumerate() {
                *o = 0.25 * src[i / 2];
            }
        }
    }
    out
}

fn add(a: &mut Act, b: &Act) {
    for (x, y) in a.v.iter_mut().zip(&b.v) {
        *x += y;
    }
}

impl AdmCpu {
    /// F(x, t, class) of one picture with its tape.
    pub fn forward_tape(
        &self,
        x: Act,
        t: f64,
        class: Option<usize>,
        threads: usize,
    ) -> (Act, Tape) {
        let emb = self.embedding(t, class);
        let size = (x.h, x.w);
        let mut kept = Vec::with_capacity(self.input.len());
        let mut tape_in = Vec::with_capacity(self.input.len());
        let mut h = x;
        for block in &self.input {
            let (o, tp) = self.run_tape(block, h, &emb, threads);
            h = o;
            tape_in.push(tp);
            kept.push(h.clone());
        }
        let (o, middle) = self.run_tape(&self.middle, h, &emb, threads);
        h = o;
        let mut output = Vec::with_capacity(self.output.len());
        let mut concat = Vec::with_capacity(self.output.len());
        for block in &self.output {
            if let Some(skip) = kept.pop() {
                concat.push((h.c, skip.c));
                h.v.extend(skip.v);
                h.c += skip.c;
            }
            let (o, tp) = self.run_tape(block, h, &emb, threads);
            h = o;
            output.push(tp);
        }
        let (n, out_norm) = self.out_norm.apply(&h, true);
        let y = self.out_conv.apply(&n, threads);
        let tape = Tape {
            input: tape_in,
            middle,
            output,
            concat,
            out_norm: out_norm.unwrap_or_else(|| unreachable!("apply keeps a tape when asked")),
            size,
        };
        (y, tape)
    }

    fn run_tape(
        &self,
        blocks: &[Block],
        mut h: Act,
        emb: &[f32],
        threads: usize,
    ) -> (Act, Vec<LayerTape>) {
        let mut tapes = Vec::with_capacity(blocks.len());
        for b in blocks {
            let (hh, ww) = (h.h, h.w);
            h = match b {
                Block::Conv(c) => {
                    tapes.push(LayerTape::Conv(hh, ww));
                    c.apply(&h, threads)
                }
                Block::Down(c) => {
                    tapes.push(LayerTape::Down(hh, ww));
                    match c {
                        Some(c) => c.apply(&h, threads),
                        None => super::adm::pool2(&h),
                    }
                }
                Block::Up(c) => {
                    tapes.push(LayerTape::Up(hh, ww));
                    let u = upsample2(&h);
                    match c {
                        Some(c) => c.apply(&u, threads),
                        None => u,
                    }
                }
                Block::Res(r) => {
                    let (o, tp) = self.res_tape(r, h, emb, threads);
                    tapes.push(LayerTape::Res(Box::new(tp)));
                    o
                }
                Block::Attention(a) => {
                    let (o, tp) = self.attention_tape(a, h, threads);
                    tapes.push(LayerTape::Attention(Box::new(tp)));
                    o
                }
            };
        }
        (h, tapes)
    }

    fn res_tape(&self, r: &Res, x: Act, emb: &[f32], threads: usize) -> (Act, ResTape) {
        let input = (x.h, x.w);
        let (t1, n1) = r.norm1.apply(&x, true);
        let mut h = r.conv1.apply(&resample(t1, r.resample), threads);
        let x = resample(x, r.resample);
        let norm2 = self.second_norm(r, &mut h, emb);
        let (t2, n2) = norm2.apply(&h, true);
        let mut y = r.conv2.apply(&t2, threads);
        match &r.skip {
            Some(c) => add(&mut y, &c.apply(&x, threads)),
            None => add(&mut y, &x),
        }
        let tape = ResTape {
            n1: n1.unwrap_or_else(|| unreachable!("kept")),
            n2: n2.unwrap_or_else(|| unreachable!("kept")),
            norm2,
            input,
            mid: (h.h, h.w),
        };
        (y, tape)
    }

    fn attention_tape(&self, a: &Attention, x: Act, threads: usize) -> (Act, AttnTape) {
        let (n, xhat, rstd) = self.plain_norm(a, &x);
        let qkv = a.qkv.apply(&n, threads).v;
        let (out, weights) = self.attend(a, &qkv, x.c, x.h * x.w, threads);
        let mut y = a.proj.apply(
            &Act {
                c: x.c,
                h: x.h,
                w: x.w,
                v: out,
            },
            threads,
        );
        add(&mut y, &x);
        (
            y,
            AttnTape {
                xhat,
                rstd,
                qkv,
                weights,
            },
        )
    }

    /// (∂F/∂x)ᵀ dy for one picture from its tape; `dy` has the network's output channels.
    pub fn backward(&self, tape: &Tape, dy: Act, threads: usize) -> Act {
        let (h, w) = tape.size;
        let d = self.out_conv.back(&dy, h, w, threads);
        let mut d = self.out_norm.back(&tape.out_norm, &d, None);
        let mut dkept: Vec<Option<Act>> = (0..self.input.len()).map(|_| None).collect();
        for (j, (block, tp)) in self.output.iter().zip(&tape.output).enumerate().rev() {
            d = self.back_blocks(block, tp, d, threads);
            let (carried, skip) = tape.concat[j];
            let hw = d.h * d.w;
            let ds = Act {
                c: skip,
                h: d.h,
                w: d.w,
                v: d.v[carried * hw..].to_vec(),
            };
            d.v.truncate(carried * hw);
            d.c = carried;
            // Output block j read the input blocks' outputs last-in first-out.
            let i = self.input.len() - 1 - j;
            dkept[i] = Some(ds);
        }
        d = self.back_blocks(&self.middle, &tape.middle, d, threads);
        for (i, (block, tp)) in self.input.iter().zip(&tape.input).enumerate().rev() {
            if let Some(ds) = dkept[i].take() {
                add(&mut d, &ds);
            }
            d = self.back_blocks(block, tp, d, threads);
        }
        d
    }

    fn back_blocks(
        &self,
        blocks: &[Block],
        tapes: &[LayerTape],
        mut d: Act,
        threads: usize,
    ) -> Act {
        for (b, t) in blocks.iter().zip(tapes).rev() {
            d = match (b, t) {
                (Block::Conv(c), LayerTape::Conv(h, w)) => c.back(&d, *h, *w, threads),
                (Block::Down(Some(c)), LayerTape::Down(h, w)) => c.back(&d, *h, *w, threads),
                (Block::Down(None), LayerTape::Down(..)) => pool2_back(&d),
                (Block::Up(c), LayerTape::Up(h, w)) => {
                    let du = match c {
                        Some(c) => c.back(&d, 2 * h, 2 * w, threads),
                        None => d,
                    };
                    upsample2_back(&du)
                }
                (Block::Res(r), LayerTape::Res(t)) => self.res_back(r, t, d, threads),
                (Block::Attention(a), LayerTape::Attention(t)) => {
                    self.attention_back(a, t, d, threads)
                }
                _ => unreachable!("the tape follows the blocks"),
            };
        }
        d
    }

    fn res_back(&self, r: &Res, t: &ResTape, dy: Act, threads: usize) -> Act {
        let (mh, mw) = t.mid;
        let dh = r.conv2.back(&dy, mh, mw, threads);
        let dn = t.norm2.back(&t.n2, &dh, None);
        let dt1 = resample_back(r.conv1.back(&dn, mh, mw, threads), r.resample);
        let mut dx = r.norm1.back(&t.n1, &dt1, None);
        let ds = match &r.skip {
            Some(c) => c.back(&dy, mh, mw, threads),
            None => dy,
        };
        add(&mut dx, &resample_back(ds, r.resample));
        debug_assert_eq!((dx.h, dx.w), t.input);
        dx
    }

    fn attention_back(&self, a: &Attention, t: &AttnTape, dy: Act, threads: usize) -> Act {
        let (c, hh, ww) = (dy.c, dy.h, dy.w);
        let tt = hh * ww;
        let da = a.proj.back(&dy, hh, ww, threads).v;
        let ch = c / a.heads;
        let scale = 1.0 / (ch as f32).sqrt();
        let mut dqkv = vec![0.0f32; 3 * c * tt];
        for hd in 0..a.heads {
            let (q0, k0, v0) = self.head_rows(hd, ch, c);
            let q = &t.qkv[q0 * tt..(q0 + ch) * tt];
            let k = &t.qkv[k0 * tt..(k0 + ch) * tt];
            let v = &t.qkv[v0 * tt..(v0 + ch) * tt];
            let w = &t.weights[hd];
            let dout = &da[hd * ch * tt..(hd + 1) * ch * tt];
            // a = v wᵀ: dv = da · w, dw[t, s] = Σ_c da[c, t] v[c, s].
            let dv = matmul_new((dout, tt, 1), w, ch, tt, tt, threads);
            let mut dw = matmul_new((dout, 1, tt), v, tt, tt, ch, threads);
            // Softmax backward, and the logits' scale.
            for (row, wr) in dw.chunks_exact_mut(tt).zip(w.chunks_exact(tt)) {
                let dot: f32 = row.iter().zip(wr).map(|(d, p)| d * p).sum();
                for (d, p) in row.iter_mut().zip(wr) {
                    *d = p * (*d - dot) * scale;
                }
            }
            // logits[t, s] = Σ_c q[c, t] k[c, s]: dq = k dlᵀ, dk = q dl.
            let dq = &mut dqkv[q0 * tt..(q0 + ch) * tt];
            matmul_acc(dq, (k, tt, 1), (&dw, 1, tt), ch, tt, tt, threads);
            let dk = &mut dqkv[k0 * tt..(k0 + ch) * tt];
            matmul_acc(dk, (q, tt, 1), (&dw, tt, 1), ch, tt, tt, threads);
            dqkv[v0 * tt..(v0 + ch) * tt].copy_from_slice(&dv);
        }
        let dn = a.qkv.back(
            &Act {
                c: 3 * c,
                h: hh,
                w: ww,
                v: dqkv,
            },
            hh,
            ww,
            threads,
        );
        let mut dx = plain_norm_back(&dn, &a.gamma, &t.xhat, &t.rstd, self.groups());
        add(&mut dx, &dy);
        dx
    }

    fn head_rows(&self, hd: usize, ch: usize, c: usize) -> (usize, usize, usize) {
        match self.order() {
            AttentionOrder::Legacy => (3 * ch * hd, 3 * ch * hd + ch, 3 * ch * hd + 2 * ch),
            AttentionOrder::QkvFirst => (ch * hd, c + ch * hd, 2 * c + ch * hd),
        }
    }
}

/// ∂/∂x of ⟨dy, γ x̂ + β⟩ for GroupNorm without an activation.
fn plain_norm_back(dy: &Act, gamma: &[f32], xhat: &[f32], rstd: &[f32], groups: usize) -> Act {
    let hw = dy.h * dy.w;
    let per = dy.c / groups.max(1);
    let mut dx = Act::zeros(dy.c, dy.h, dy.w);
    for g in 0..groups {
        let span = g * per * hw..(g + 1) * per * hw;
        let (mut m1, mut m2) = (0.0f64, 0.0f64);
        for cc in 0..per {
            let ch = g * per + cc;
            let o = span.start + cc * hw;
            for ((d, z), xh) in dx.v[o..o + hw]
                .iter_mut()
                .zip(&dy.v[o..o + hw])
                .zip(&xhat[o..o + hw])
            {
                *d = gamma[ch] * z;
                m1 += f64::from(*d);
                m2 += f64::from(*d * xh);
            }
        }
        let n = span.len() as f64;
        let (m1, m2, r) = ((m1 / n) as f32, (m2 / n) as f32, rstd[g]);
        for (d, xh) in dx.v[span.clone()].iter_mut().zip(&xhat[span]) {
            *d = r * (*d - m1 - xh * m2);
        }
    }
    dx
}

/// Keeps `exp_fast` in one place for the softmax of both passes.
pub fn softmax_rows(w: &mut [f32], t: usize, scale: f32) {
    for row in w.chunks_exact_mut(t) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) * scale;
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = exp_fast(*v * scale - m);
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

impl AdmCpu {
    /// F(x, t, class) for a batch [B, C, H, W] with every picture's tape (pictures in
    /// parallel, as [`AdmCpu::forward`]).
    pub fn forward_tapes(
        &self,
        x: &[f32],
        [b, c, h, w]: [usize; 4],
        t: &[f64],
        class: Option<&[usize]>,
    ) -> (Vec<f32>, Vec<Tape>) {
        let threads = rayon::current_num_threads();
        let inner = if b >= threads { 1 } else { threads };
        let per = c * h * w;
        let runs = super::layers::per_image(b, |k| {
            let act = Act {
                c,
                h,
                w,
                v: x[k * per..(k + 1) * per].to_vec(),
            };
            self.forward_tape(act, t[k], class.map(|cl| cl[k]), inner)
        });
        let mut out = Vec::with_capacity(b * self.out_channels() * h * w);
        let mut tapes = Vec::with_capacity(b);
        for (a, tape) in runs {
            out.extend(a.v);
            tapes.push(tape);
        }
        (out, tapes)
    }

    /// (∂F/∂x)ᵀ dy for a batch from its tapes; `dy` is [B, out_channels, H, W].
    pub fn backward_batch(&self, tapes: &[Tape], dy: &[f32]) -> Vec<f32> {
        let threads = rayon::current_num_threads();
        let inner = if tapes.len() >= threads { 1 } else { threads };
        let o = self.out_channels();
        let per_out = dy.len() / tapes.len().max(1);
        let grads = super::layers::per_image(tapes.len(), |k| {
            let (h, w) = tapes[k].size;
            let d = Act {
                c: o,
                h,
                w,
                v: dy[k * per_out..(k + 1) * per_out].to_vec(),
            };
            self.backward(&tapes[k], d, inner).v
        });
        grads.into_iter().flatten().collect()
    }
}
