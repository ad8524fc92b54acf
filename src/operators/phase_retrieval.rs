//! y = |F(pad(x'))|, x' = (x + 1)/2 ∈ [0, 1]: the Fourier magnitude of the picture padded by
//! oversample/8 of its size on each side (DPS's and DAPS's phase retrieval). F is the
//! orthonormal 2-D DFT with the zero frequency in the middle (fftshift), so ‖F‖ = 1 and a σ_y
//! means the same per value as it does on pictures.
//!
//! The padded DFT is F_pad·pad(u) = F[:, p..p+H]·u, so the padding is never built: each axis
//! is one [N, H] cosine and one sine matrix, and the magnitude is four matrix products.

use super::{Operator, Task};
use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::{Device, Tensor};

pub struct PhaseRetrieval {
    shape: [usize; 3],
    oversample: f64,
    /// Padded sizes N_h, N_w.
    padded: [usize; 2],
    /// [1, 1, N_h, H] cosine and sine rows of the shifted DFT (rows: frequencies).
    ch: Tensor<4>,
    sh: Tensor<4>,
    /// [1, 1, W, N_w]: the same for the width, already transposed.
    cw_t: Tensor<4>,
    sw_t: Tensor<4>,
}

/// The cosine and sine parts of the orthonormal N-point DFT's columns `offset..offset + n`,
/// rows in fftshift order: [N, n] each, row-major.
fn dft_parts(big_n: usize, offset: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let norm = 1.0 / (big_n as f64).sqrt();
    let (mut c, mut s) = (vec![0.0; big_n * n], vec![0.0; big_n * n]);
    for row in 0..big_n {
        // fftshift: row r holds frequency (r + N − N/2) mod N, zero frequency at N/2.
        let k = (row + big_n - big_n / 2) % big_n;
        for j in 0..n {
            let idx = (k * (j + offset)) % big_n;
            let angle = std::f64::consts::TAU * idx as f64 / big_n as f64;
            c[row * n + j] = angle.cos() * norm;
            s[row * n + j] = angle.sin() * norm;
        }
    }
    (c, s)
}

fn transpose(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

impl PhaseRetrieval {
    pub fn new(shape: [usize; 3], oversample: f64, device: &Device) -> Result<Self> {
        if !(oversample.is_finite() && oversample >= 1.0) {
            return Err(Error::invalid(
                "PhaseRetrieval",
                format!("oversample must be a number of at least 1, got {oversample}"),
            ));
        }
        let [_, h, w] = shape;
        let pad = |n: usize| (oversample / 8.0 * n as f64).round() as usize;
        let (ph, pw) = (pad(h), pad(w));
        let (nh, nw) = (h + 2 * ph, w + 2 * pw);
        if nh * h > 1 << 26 || nw * w > 1 << 26 {
            return Err(Error::invalid(
                "PhaseRetrieval",
                format!("{h}×{w} padded to {nh}×{nw} is too large for its dense DFT matrices"),
            ));
        }
        let (ch, sh) = dft_parts(nh, ph, h);
        let (cw, sw) = dft_parts(nw, pw, w);
        Ok(Self {
            shape,
            oversample,
            padded: [nh, nw],
            ch: tensor::from_f64(&ch, [1, 1, nh, h], device),
            sh: tensor::from_f64(&sh, [1, 1, nh, h], device),
            cw_t: tensor::from_f64(&transpose(&cw, nw, w), [1, 1, w, nw], device),
            sw_t: tensor::from_f64(&transpose(&sw, nw, w), [1, 1, w, nw], device),
        })
    }

    /// (Re, Im) of F(pad(u)) for u [B, C, H, W]: F = C − iS on each axis, so
    /// F U Fᵀ = (C U Cᵀ − S U Sᵀ) − i (C U Sᵀ + S U Cᵀ).
    fn spectrum(&self, u: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, c, h, w] = u.dims();
        let [nh, nw] = self.padded;
        let left = |m: &Tensor<4>| m.clone().expand([b, c, nh, h]).matmul(u.clone());
        let right = |m: &Tensor<4>| m.clone().expand([b, c, w, nw]);
        let (cu, su) = (left(&self.ch), left(&self.sh));
        let re = cu.clone().matmul(right(&self.cw_t)) - su.clone().matmul(right(&self.sw_t));
        let im = (cu.matmul(right(&self.sw_t)) + su.matmul(right(&self.cw_t))).neg();
        (re, im)
    }
}

impl Operator for PhaseRetrieval {
    fn name(&self) -> String {
        format!("PhaseRetrieval(oversample: {})", self.oversample)
    }
    fn task(&self) -> Task {
        Task::PhaseRetrieval
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        [self.shape[0], self.padded[0], self.padded[1]]
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (re, im) = self.spectrum(x.add_scalar(1.0).mul_scalar(0.5));
        // The offset keeps the magnitude's gradient finite where the spectrum vanishes
        // (|F| ≥ 1e-6, far below any σ_y).
        (re.square() + im.square()).add_scalar(1e-12).sqrt()
    }
    /// The adjoint of x ↦ Re F(pad(x/2)): ½ (Cᵀ V C − Sᵀ V S) per axis pair.
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, c, nh, nw] = y.dims();
        let [_, h, w] = self.shape;
        let ct = self.ch.clone().transpose().expand([b, c, h, nh]);
        let st = self.sh.clone().transpose().expand([b, c, h, nh]);
        let cw = self.cw_t.clone().transpose().expand([b, c, nw, w]);
        let sw = self.sw_t.clone().transpose().expand([b, c, nw, w]);
        (ct.matmul(y.clone()).matmul(cw) - st.matmul(y).matmul(sw)).mul_scalar(0.5)
    }
    fn is_linear(&self) -> bool {
        false
    }
    fn vjp(&self, x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        super::autodiff_vjp(self, x, v)
    }
    /// ‖J‖ ≤ ½‖F‖ = ½: the magnitude is 1-Lipschitz and x' = (x + 1)/2.
    fn norm_sq(&self, _device: &Device) -> Result<f64> {
        Ok(0.25)
    }
    /// The log-magnitude, centred, scaled to [−1, 1] and resampled to the picture's size.
    fn view_measurement(&self, y: &[f32]) -> Option<(Vec<f32>, Vec<bool>)> {
        let [c, h, w] = self.shape;
        let [nh, nw] = self.padded;
        let logs: Vec<f32> = y.iter().map(|v| v.max(0.0).ln_1p()).collect();
        let top = logs.iter().copied().fold(1e-12f32, f32::max);
        let mut view = Vec::with_capacity(c * h * w);
        for ch in 0..c {
            for r in 0..h {
                for col in 0..w {
                    let (sr, sc) = (r * nh / h, col * nw / w);
                    let v = logs
                        .get(ch * nh * nw + sr * nw + sc)
                        .copied()
                        .unwrap_or(0.0);
                    view.push(2.0 * v / top - 1.0);
                }
            }
        }
        Some((view, vec![true; c * h * w]))
    }
}
