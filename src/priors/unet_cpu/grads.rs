//! The weights' gradients of the CPU U-Net, for training on the `flex` backend: burn's autodiff
//! runs the same network several times slower (docs/engine-profile.md), and a training step is
//! one forward pass and one backward pass, the kernels sampling already uses. Every layer adds
//! its gradients into one flat buffer at its own offset; the offsets, with burn's parameter ids
//! and shapes, turn the buffer into the optimizer's [`GradientsParams`].

use super::kernels::{columns, im2col, matmul_acc, tile_rows};
use super::layers::{Act, Conv, Lin, exp_fast};
use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::Device;

/// Where each trainable tensor's gradient lies in the flat buffer.
#[derive(Debug, Default)]
pub struct Layout {
    /// Length of the flat buffer.
    pub size: usize,
    /// burn's parameter, its offset and its shape (a bias or affine weight burn does not have
    /// keeps its slot but is not listed).
    pub params: Vec<(ParamId, usize, Vec<usize>)>,
}

impl Layout {
    /// Reserves a slot for a tensor of `shape`, listed under `id` when it is a burn parameter.
    pub fn take(&mut self, id: Option<ParamId>, shape: &[usize]) -> usize {
        let at = self.size;
        if let Some(id) = id {
            self.params.push((id, at, shape.to_vec()));
        }
        self.size += shape.iter().product::<usize>();
        at
    }

    /// The flat gradient as burn's per-parameter gradients on `device`.
    pub fn to_gradients(&self, g: &[f32], device: &Device) -> GradientsParams {
        let mut out = GradientsParams::new();
        for (id, at, shape) in &self.params {
            let n: usize = shape.iter().product();
            let v = g[*at..at + n].to_vec();
            match shape[..] {
                [a] => out.register(*id, crate::tensor::from_vec(v, [a], device)),
                [a, b] => out.register(*id, crate::tensor::from_vec(v, [a, b], device)),
                [a, b, c, d] => out.register(*id, crate::tensor::from_vec(v, [a, b, c, d], device)),
                // The network has only vectors, matrices and convolution kernels.
                _ => {}
            }
        }
        out
    }
}

/// One image's gradient accumulation: the flat buffer, and the noise embedding with the
/// gradient flowing into it from every block's per-channel shift.
pub struct ParamGrads {
    pub g: Vec<f32>,
    pub emb: Vec<f32>,
    pub demb: Vec<f32>,
}

impl ParamGrads {
    /// A block adds `lin(emb)` to every pixel of each channel of its first convolution's
    /// output, whose gradient is `dh`.
    pub fn embedding_shift(&mut self, lin: &Lin, dh: &Act) {
        let hw = dh.h * dh.w;
        let ds: Vec<f32> = (0..dh.c)
            .map(|ch| dh.v[ch * hw..(ch + 1) * hw].iter().sum())
            .collect();
        let dx = lin.back(&self.emb, &ds, &mut self.g);
        self.demb.iter_mut().zip(dx).for_each(|(a, b)| *a += b);
    }
}

/// silu'(y) = s (1 + y (1 − s)), s = sigmoid(y).
pub fn silu_grad(y: f32) -> f32 {
    let s = 1.0 / (1.0 + exp_fast(-y));
    s * (1.0 + y * (1.0 - s))
}

impl Conv {
    /// Adds ∂/∂W = dy · im2col(x)ᵀ and ∂/∂b = Σ dy into `g`, for the input x the forward pass
    /// saw: im2col is recomputed tile by tile (keeping it would take k² times the activations'
    /// memory).
    pub fn grad_params(&self, dy: &Act, x: &Act, threads: usize, g: &mut [f32]) {
        let n = dy.h * dy.w;
        let kk = self.i * self.k * self.k;
        let (gw, gb) = g[self.g..self.g + self.o * kk + self.o].split_at_mut(self.o * kk);
        for (o, b) in gb.iter_mut().enumerate() {
            *b += dy.v[o * n..(o + 1) * n].iter().sum::<f32>();
        }
        // colᵀ as a k×n matrix (k = pixels): element (p, r) at col[r·tn + p].
        if self.k == 1 && self.stride == 1 {
            matmul_acc(gw, (&dy.v, n, 1), (&x.v, 1, n), self.o, kk, n, threads);
            return;
        }
        let step = tile_rows(kk, dy.w, dy.h);
        let mut col = vec![];
        for r0 in (0..dy.h).step_by(step) {
            let rows = r0..(r0 + step).min(dy.h);
            let tn = rows.len() * dy.w;
            im2col(x, self.k, self.stride, dy.w, rows, &mut col);
            if tn == n {
                matmul_acc(gw, (&dy.v, n, 1), (&col, 1, n), self.o, kk, n, threads);
            } else {
                let part = columns(&dy.v, n, r0 * dy.w..r0 * dy.w + tn);
                matmul_acc(gw, (&part, tn, 1), (&col, 1, tn), self.o, kk, tn, threads);
            }
        }
    }
}

impl Lin {
    /// Adds ∂/∂W = x ⊗ dy and ∂/∂b = dy into `g`; returns ∂/∂x = W dy.
    pub fn back(&self, x: &[f32], dy: &[f32], g: &mut [f32]) -> Vec<f32> {
        let (gw, gb) = g[self.g..self.g + self.i * self.o + self.o].split_at_mut(self.i * self.o);
        for (i, xi) in x.iter().enumerate().take(self.i) {
            for (w, d) in gw[i * self.o..(i + 1) * self.o].iter_mut().zip(dy) {
                *w += xi * d;
            }
        }
        gb.iter_mut().zip(dy).for_each(|(b, d)| *b += d);
        (0..self.i)
            .map(|i| {
                self.w[i * self.o..(i + 1) * self.o]
                    .iter()
                    .zip(dy)
                    .map(|(w, d)| w * d)
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(c: usize, h: usize, w: usize, seed: f32) -> Act {
        Act {
            c,
            h,
            w,
            v: (0..c * h * w)
                .map(|i| ((i as f32 + seed) * 0.37).sin())
                .collect(),
        }
    }

    /// ⟨dy, conv_W(x)⟩ is linear in W and b: its gradient is what `grad_params` adds.
    #[test]
    fn conv_weight_gradient_matches_finite_differences() {
        let x = act(2, 5, 6, 0.5);
        for (k, stride) in [(3, 1), (3, 2), (1, 1)] {
            let mut cv = Conv {
                w: (0..3 * 2 * k * k)
                    .map(|i| (i as f32 * 0.13).cos())
                    .collect(),
                b: vec![0.1, -0.2, 0.3],
                i: 2,
                o: 3,
                k,
                stride,
                g: 2,
            };
            let (ho, wo) = cv.out_size(5, 6);
            let dy = act(3, ho, wo, 4.0);
            let f = |cv: &Conv| -> f64 {
                let out = cv.apply(&x, 1);
                out.v
                    .iter()
                    .zip(&dy.v)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum()
            };
            let nw = cv.w.len();
            let mut g = vec![0.0f32; 2 + nw + 3];
            cv.grad_params(&dy, &x, 1, &mut g);
            for j in 0..nw + 3 {
                let h = 0.01f32;
                let bump = |cv: &mut Conv, d: f32| {
                    if j < nw {
                        cv.w[j] += d
                    } else {
                        cv.b[j - nw] += d
                    }
                };
                bump(&mut cv, h);
                let up = f(&cv);
                bump(&mut cv, -2.0 * h);
                let down = f(&cv);
                bump(&mut cv, h);
                let fd = (up - down) / (2.0 * f64::from(h));
                let got = f64::from(g[2 + j]);
                assert!(
                    (fd - got).abs() < 1e-3 * (1.0 + fd.abs()),
                    "k {k} s {stride} #{j}: {fd} vs {got}"
                );
            }
        }
    }
}
