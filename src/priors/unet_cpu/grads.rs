//! The weights' gradients of the CPU U-Net, for training on the `flex` backend: burn's autodiff
//! runs the same network several times slower (docs/engine-profile.md), and a training step is
//! one forward pass and one backward pass, the kernels sampling already uses. Every layer adds
//! its gradients into one flat buffer at its own offset; the offsets, with burn's parameter ids
//! and shapes, turn the buffer into the optimizer's [`GradientsParams`].

use super::layers::{Act, Lin, exp_fast};
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
