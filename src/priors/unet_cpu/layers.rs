//! The layers of the CPU U-Net, each with its forward pass and the backward pass with respect
//! to its input; with a [`ParamGrads`] sink the backward passes also accumulate the gradients of
//! the weights (training; the samplers need ∂D/∂x only).

use super::conv::Conv;
use super::grads::ParamGrads;
use super::kernels::wide_method;
use rayon::prelude::*;

/// What a forward pass keeps for its backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    /// Enough for ∂/∂x (normalised activations, group statistics).
    InputGrad,
    /// Also every convolution's input, for the weights' gradients.
    ParamGrad,
}

/// One image's activations, [c, h, w].
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub v: Vec<f32>,
}

impl Act {
    /// A deterministic test picture: sin((index + seed)·0.37).
    #[cfg(test)]
    pub fn pattern(c: usize, h: usize, w: usize, seed: f32) -> Self {
        Self {
            c,
            h,
            w,
            v: (0..c * h * w)
                .map(|i| ((i as f32 + seed) * 0.37).sin())
                .collect(),
        }
    }

    /// ⟨self, other⟩ in f64 (tests' adjoint identities).
    #[cfg(test)]
    pub fn dot(&self, other: &Act) -> f64 {
        self.v
            .iter()
            .zip(&other.v)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            v: vec![0.0; c * h * w],
        }
    }
}

/// GroupNorm with affine weights, then SiLU.
#[derive(Debug)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub groups: usize,
    pub eps: f64,
    /// Offset of γ's gradient in a flat gradient buffer (β's follows).
    pub g: usize,
}

/// What the backward pass of GroupNorm + SiLU needs: the normalised input and 1/σ per group.
pub struct NormTape {
    xhat: Vec<f32>,
    rstd: Vec<f32>,
}

impl Norm {
    wide_method! {
        /// silu(γ·(x − μ_g)/σ_g + β), statistics in f64; with the tape when `keep`.
        pub fn apply / apply_avx2 => apply_body(&self, x: &Act, keep: bool) -> (Act, Option<NormTape>)
    }

    #[inline(always)]
    fn apply_body(&self, x: &Act, keep: bool) -> (Act, Option<NormTape>) {
        let hw = x.h * x.w;
        let per = x.c / self.groups.max(1);
        // Written channel by channel in order (no zero-fill pass).
        let mut v = Vec::with_capacity(x.v.len());
        let mut xhat = Vec::with_capacity(if keep { x.v.len() } else { 0 });
        let mut rstds = vec![0.0f32; self.groups];
        for g in 0..self.groups {
            let span = g * per * hw..(g + 1) * per * hw;
            let src = &x.v[span.clone()];
            let n = src.len() as f64;
            // Two vectorised passes (mean, then squares about it: no cancellation), each in
            // f32 lanes totalled in f64; a scalar f64 pass cost ~3× the whole normalisation.
            let mean = lane_sum(src, |x| x) / n;
            let m = mean as f32;
            let var = lane_sum(src, |x| (x - m) * (x - m)) / n;
            let rstd = 1.0 / (var + self.eps).sqrt();
            rstds[g] = rstd as f32;
            let (m, r) = (mean as f32, rstd as f32);
            for cc in 0..per {
                let ch = g * per + cc;
                let o = span.start + cc * hw;
                let (gm, bt) = (self.gamma[ch], self.beta[ch]);
                let (scale, shift) = (r * gm, bt - m * r * gm);
                v.extend(x.v[o..o + hw].iter().map(|s| {
                    let y = s * scale + shift;
                    y / (1.0 + exp_fast(-y))
                }));
                if keep {
                    xhat.extend(x.v[o..o + hw].iter().map(|s| (s - m) * r));
                }
            }
        }
        let act = Act {
            c: x.c,
            h: x.h,
            w: x.w,
            v,
        };
        (act, keep.then_some(NormTape { xhat, rstd: rstds }))
    }

    wide_method! {
        /// ∂/∂x of ⟨dz, silu(groupnorm(x))⟩; with `sink`, also adds ∂/∂γ and ∂/∂β into it.
        pub fn back / back_avx2 => back_body(&self, t: &NormTape, dz: &Act, sink: Option<&mut [f32]>) -> Act
    }

    #[inline(always)]
    fn back_body(&self, t: &NormTape, dz: &Act, mut sink: Option<&mut [f32]>) -> Act {
        let hw = dz.h * dz.w;
        let per = dz.c / self.groups.max(1);
        let c = dz.c;
        // Zero-filled first: an `extend` here compiled out of line, without AVX2.
        let mut dx = Act::zeros(dz.c, dz.h, dz.w);
        for g in 0..self.groups {
            let span = g * per * hw..(g + 1) * per * hw;
            // dy = dz · silu'(y), y = γ x̂ + β; per channel Σ dy (= ∂/∂β) and Σ dy x̂ (= ∂/∂γ),
            // which also give the group's means of dx̂ = γ dy and of dx̂ · x̂.
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for cc in 0..per {
                let ch = g * per + cc;
                let o = span.start + cc * hw;
                let (gm, bt) = (self.gamma[ch], self.beta[ch]);
                let it = dx.v[o..o + hw]
                    .iter_mut()
                    .zip(&dz.v[o..o + hw])
                    .zip(&t.xhat[o..o + hw]);
                for ((d, z), xh) in it {
                    let y = gm * xh + bt;
                    let s = 1.0 / (1.0 + exp_fast(-y));
                    *d = z * s * (1.0 + y * (1.0 - s));
                }
                let (db, dg) = sum_and_dot(&dx.v[o..o + hw], &t.xhat[o..o + hw]);
                if let Some(g) = sink.as_deref_mut() {
                    g[self.g + ch] += dg as f32;
                    g[self.g + c + ch] += db as f32;
                }
                m1 += f64::from(gm) * db;
                m2 += f64::from(gm) * dg;
            }
            let n = span.len() as f64;
            let (m1, m2, r) = ((m1 / n) as f32, (m2 / n) as f32, t.rstd[g]);
            for cc in 0..per {
                let o = span.start + cc * hw;
                let gm = self.gamma[g * per + cc];
                for (d, xh) in dx.v[o..o + hw].iter_mut().zip(&t.xhat[o..o + hw]) {
                    *d = r * (gm * *d - m1 - xh * m2);
                }
            }
        }
        dx
    }
}

/// Σ f(a) in 16 f32 lanes (so the loop vectorises), totalled in f64.
#[inline(always)]
fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    const L: usize = 16;
    let mut s = [0.0f32; L];
    let chunks = a.chunks_exact(L);
    let rest = chunks.remainder();
    for x in chunks {
        for k in 0..L {
            s[k] += f(x[k]);
        }
    }
    s.iter().map(|v| f64::from(*v)).sum::<f64>()
        + rest.iter().map(|v| f64::from(f(*v))).sum::<f64>()
}

/// (Σ a, Σ a·b) in 16 f32 lanes (so the loop vectorises), totalled in f64.
#[inline(always)]
fn sum_and_dot(a: &[f32], b: &[f32]) -> (f64, f64) {
    const L: usize = 16;
    let (mut s1, mut s2) = ([0.0f32; L], [0.0f32; L]);
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..L {
            s1[k] += x[k];
            s2[k] += x[k] * y[k];
        }
    }
    let mut t1: f64 = s1.iter().map(|v| f64::from(*v)).sum();
    let mut t2: f64 = s2.iter().map(|v| f64::from(*v)).sum();
    for (x, y) in ra.iter().zip(rb) {
        t1 += f64::from(*x);
        t2 += f64::from(x * y);
    }
    (t1, t2)
}

/// A linear layer, weights [in, out] as burn stores them.
#[derive(Debug)]
pub struct Lin {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub i: usize,
    pub o: usize,
    /// Offset of the weights' gradient in a flat gradient buffer (the bias's follows).
    pub g: usize,
}

impl Lin {
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = self.b.clone();
        for (i, xi) in x.iter().enumerate().take(self.i) {
            for (o, wv) in out.iter_mut().zip(&self.w[i * self.o..(i + 1) * self.o]) {
                *o += xi * wv;
            }
        }
        out
    }
}

/// GroupNorm → SiLU → conv, plus the embedding's shift, twice; residual scaled by 1/√2.
#[derive(Debug)]
pub struct Block {
    pub norm1: Norm,
    pub conv1: Conv,
    pub emb: Lin,
    pub norm2: Norm,
    pub conv2: Conv,
    pub skip: Option<Conv>,
}

pub struct BlockTape {
    n1: NormTape,
    n2: NormTape,
    shape: (usize, usize, usize),
    /// With [`Keep::ParamGrad`]: the inputs of conv1, conv2 and of the skip convolution.
    inputs: Option<(Act, Act, Option<Act>)>,
}

const RES: f32 = std::f32::consts::FRAC_1_SQRT_2;

impl Block {
    pub fn apply(
        &self,
        x: Act,
        emb: &[f32],
        threads: usize,
        keep: Keep,
    ) -> (Act, Option<BlockTape>) {
        let tape = keep != Keep::Nothing;
        let (t1, n1) = self.norm1.apply(&x, tape);
        let mut h = self.conv1.apply(&t1, threads);
        let hw = h.h * h.w;
        for (ch, s) in self.emb.apply(emb).iter().enumerate() {
            h.v[ch * hw..(ch + 1) * hw].iter_mut().for_each(|v| *v += s);
        }
        let (t2, n2) = self.norm2.apply(&h, tape);
        let mut h = self.conv2.apply(&t2, threads);
        let s_owned;
        let s = match &self.skip {
            Some(c) => {
                s_owned = c.apply(&x, threads);
                &s_owned.v
            }
            None => &x.v,
        };
        for (a, b) in h.v.iter_mut().zip(s) {
            *a = (b + *a) * RES;
        }
        let shape = (x.c, x.h, x.w);
        let inputs = (keep == Keep::ParamGrad).then(|| (t1, t2, self.skip.as_ref().map(|_| x)));
        let tape = match (n1, n2) {
            (Some(n1), Some(n2)) => Some(BlockTape {
                n1,
                n2,
                shape,
                inputs,
            }),
            _ => None,
        };
        (h, tape)
    }

    /// ∂/∂x; with `pg` (and a tape kept with [`Keep::ParamGrad`]) also the weights' gradients
    /// and the embedding's.
    pub fn back(
        &self,
        t: &BlockTape,
        dout: &Act,
        threads: usize,
        mut pg: Option<&mut ParamGrads>,
    ) -> Act {
        let (c, h, w) = t.shape;
        let mut d = dout.clone();
        d.v.iter_mut().for_each(|v| *v *= RES);
        let inputs = t.inputs.as_ref().filter(|_| pg.is_some());
        let dt2 = self.conv2.back(&d, h, w, threads);
        let dh = self
            .norm2
            .back(&t.n2, &dt2, pg.as_deref_mut().map(|p| &mut p.g[..]));
        let dt1 = self.conv1.back(&dh, h, w, threads);
        let mut dx = self
            .norm1
            .back(&t.n1, &dt1, pg.as_deref_mut().map(|p| &mut p.g[..]));
        if let (Some(p), Some((t1, t2, xs))) = (pg, inputs) {
            self.conv2.grad_params(&d, t2, threads, &mut p.g);
            self.conv1.grad_params(&dh, t1, threads, &mut p.g);
            p.embedding_shift(&self.emb, &dh);
            if let (Some(s), Some(x)) = (&self.skip, xs) {
                s.grad_params(&d, x, threads, &mut p.g);
            }
        }
        match &self.skip {
            Some(s) => {
                let ds = s.back(&d, h, w, threads);
                dx.v.iter_mut().zip(&ds.v).for_each(|(a, b)| *a += b);
            }
            None => dx.v.iter_mut().zip(&d.v).for_each(|(a, b)| *a += b),
        }
        debug_assert_eq!(dx.c, c);
        dx
    }
}

pub fn upsample2(x: &Act) -> Act {
    let (h2, w2) = (2 * x.h, 2 * x.w);
    let mut out = Act::zeros(x.c, h2, w2);
    for ch in 0..x.c {
        for y in 0..h2 {
            let src = &x.v[(ch * x.h + y / 2) * x.w..][..x.w];
            for (i, d) in out.v[(ch * h2 + y) * w2..][..w2].iter_mut().enumerate() {
                *d = src[i / 2];
            }
        }
    }
    out
}

/// The adjoint of [`upsample2`]: each 2×2 block's gradients summed.
pub fn upsample2_back(d: &Act) -> Act {
    let (h, w) = (d.h / 2, d.w / 2);
    let mut out = Act::zeros(d.c, h, w);
    for ch in 0..d.c {
        for y in 0..d.h {
            let src = &d.v[(ch * d.h + y) * d.w..][..d.w];
            let dst = &mut out.v[(ch * h + y / 2) * w..][..w];
            for (i, g) in src.iter().enumerate() {
                dst[i / 2] += g;
            }
        }
    }
    out
}

/// x·sigmoid(x) in place, with an exp that vectorises.
pub fn silu_in_place(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x /= 1.0 + exp_fast(-*x);
    }
}

/// e^x for f32 to about 2 ulp: 2^n · p(r), r = x − n ln 2 in [−ln2/2, ln2/2], a degree-6
/// polynomial; branch-free so loops over it vectorise.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick (no libm call, vectorises on plain SSE2).
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // 2^n from t's low mantissa bits, which hold n (an `as i32` cast would not vectorise: it
    // saturates lane by lane).
    let biased = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127);
    p * f32::from_bits(biased << 23)
}

/// Runs `f` on every image of a batch in parallel.
pub fn per_image<T: Send>(b: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    (0..b).into_par_iter().map(f).collect()
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
    fn norm_silu_and_block_backs_match_finite_differences() {
        let norm = |c: usize| Norm {
            gamma: (0..c).map(|i| 0.8 + 0.1 * i as f32).collect(),
            beta: (0..c).map(|i| 0.05 * i as f32 - 0.1).collect(),
            groups: 2,
            eps: 1e-5,
            g: 0,
        };
        let conv = |i: usize, o: usize, k: usize| {
            Conv::new(
                (0..o * i * k * k)
                    .map(|j| ((j as f32) * 0.29).sin() * 0.3)
                    .collect(),
                vec![0.05; o],
                (i, o, k),
                1,
                0,
            )
        };
        let block = Block {
            norm1: norm(2),
            conv1: conv(2, 4, 3),
            emb: Lin {
                w: vec![0.1; 3 * 4],
                b: vec![0.0; 4],
                i: 3,
                o: 4,
                g: 0,
            },
            norm2: norm(4),
            conv2: conv(4, 4, 3),
            skip: Some(conv(2, 4, 1)),
        };
        let emb = [0.3, -0.2, 0.5];
        let x = Act::pattern(2, 4, 4, 1.0);
        let dy = Act::pattern(4, 4, 4, 7.0);
        let f = |x: &Act| Act::dot(&dy, &block.apply(x.clone(), &emb, 1, Keep::Nothing).0);
        let (_, tape) = block.apply(x.clone(), &emb, 1, Keep::InputGrad);
        let dx = block.back(&tape.unwrap(), &dy, 1, None);
        for i in [0, 5, 17, 31] {
            let h = 1e-2;
            let (mut up, mut down) = (x.clone(), x.clone());
            up.v[i] += h;
            down.v[i] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * f64::from(h));
            assert!(
                (fd - f64::from(dx.v[i])).abs() < 2e-3 * (1.0 + fd.abs()),
                "{i}: {fd} vs {}",
                dx.v[i]
            );
        }
        // Upsampling's back is its adjoint.
        let u = upsample2(&x);
        let du = Act::pattern(2, 8, 8, 2.0);
        assert!((Act::dot(&du, &u) - Act::dot(&upsample2_back(&du), &x)).abs() < 1e-4);
    }
}
