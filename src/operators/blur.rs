//! Gaussian blur of standard deviation s pixels with reflecting borders, same shape.
//!
//! Matches `scipy.ndimage.gaussian_filter(x, (0, s, s), mode="reflect", truncate=4.0)`:
//! radius round(4s), normalised weights, half-sample symmetric borders (d c b a | a b c d).
//! Implemented as two dense 1-D blur matrices (y = B_h X B_wᵀ per channel), which makes the
//! adjoint exact (B_hᵀ Y B_w) and keeps gradients simple; the solve falls back to CG.

use super::{Operator, Structure};
use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::{Device, Tensor};

pub struct Blur {
    shape: [usize; 3],
    sigma: f64,
    /// [1, 1, H, H]
    bh: Tensor<4>,
    bh_t: Tensor<4>,
    /// [1, 1, W, W]
    bw: Tensor<4>,
    bw_t: Tensor<4>,
}

/// Index after half-sample symmetric reflection into [0, n).
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let period = 2 * n;
    let mut k = i.rem_euclid(period);
    if k >= n {
        k = period - 1 - k;
    }
    k as usize
}

/// The n×n matrix of 1-D Gaussian blur with reflecting borders (row i = output pixel i).
pub fn blur_matrix(n: usize, sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|k| (-0.5 * (k as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for (j, w) in weights.iter().enumerate() {
            let src = reflect(i as i64 + j as i64 - radius, n);
            m[i * n + src] += w / total;
        }
    }
    m
}

impl Blur {
    pub fn new(shape: [usize; 3], sigma: f64, device: &Device) -> Result<Self> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::invalid(
                "Blur",
                format!("sigma must be a positive number of pixels, got {sigma}"),
            ));
        }
        if sigma > 1000.0 {
            return Err(Error::invalid(
                "Blur",
                format!("sigma {sigma} is too large"),
            ));
        }
        let [_, h, w] = shape;
        let mk = |n: usize| {
            let m = blur_matrix(n, sigma);
            let t: Vec<f64> = (0..n * n).map(|k| m[(k % n) * n + k / n]).collect();
            (
                tensor::from_f64(&m, [1, 1, n, n], device),
                tensor::from_f64(&t, [1, 1, n, n], device),
            )
        };
        let (bh, bh_t) = mk(h);
        let (bw, bw_t) = mk(w);
        Ok(Self {
            shape,
            sigma,
            bh,
            bh_t,
            bw,
            bw_t,
        })
    }
}

impl Operator for Blur {
    fn name(&self) -> String {
        format!("Blur(sigma: {})", self.sigma)
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let rows = self.bh.clone().expand([b, c, h, h]).matmul(x);
        rows.matmul(self.bw_t.clone().expand([b, c, w, w]))
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = y.dims();
        let rows = self.bh_t.clone().expand([b, c, h, h]).matmul(y);
        rows.matmul(self.bw.clone().expand([b, c, w, w]))
    }
    fn structure(&self) -> Structure {
        let [_, h, w] = self.shape;
        Structure::Separable {
            bh: blur_matrix(h, self.sigma),
            bw: blur_matrix(w, self.sigma),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_reflect() {
        let m = blur_matrix(5, 1.0);
        for i in 0..5 {
            let s: f64 = m[i * 5..(i + 1) * 5].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        assert_eq!(reflect(-1, 5), 0);
        assert_eq!(reflect(-2, 5), 1);
        assert_eq!(reflect(5, 5), 4);
        assert_eq!(reflect(6, 5), 3);
        assert_eq!(reflect(12, 5), 2);
    }
}
