//! y = clip(g·x, −1, 1): an over-exposed picture (DAPS's HDR task), gain g ≥ 1 burning out
//! whatever was brighter than 1/g.

use super::{Operator, Task};
use crate::error::{Error, Result};
use burn::tensor::Tensor;

pub struct Clip {
    shape: [usize; 3],
    gain: f64,
}

impl Clip {
    pub fn new(shape: [usize; 3], gain: f64) -> Result<Self> {
        if !(gain.is_finite() && gain > 0.0) {
            return Err(Error::invalid(
                "Clip",
                format!("gain must be a positive number, got {gain}"),
            ));
        }
        Ok(Self { shape, gain })
    }
}

impl Operator for Clip {
    fn name(&self) -> String {
        format!("Clip(gain: {})", self.gain)
    }
    fn task(&self) -> Task {
        Task::Declip
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.mul_scalar(self.gain).clamp(-1.0, 1.0)
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        y.mul_scalar(self.gain)
    }
    fn is_linear(&self) -> bool {
        false
    }
    /// g·v where g·x lies strictly inside (−1, 1), 0 where it is clipped: a burnt-out value
    /// says only that x ≥ 1/g, and the likelihood gives no pull there.
    fn vjp(&self, x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        let inside = x.mul_scalar(self.gain).abs().lower_elem(1.0).float();
        v.mul_scalar(self.gain) * inside
    }
    fn norm_sq(&self, _device: &burn::tensor::Device) -> Result<f64> {
        Ok(self.gain * self.gain)
    }
}
