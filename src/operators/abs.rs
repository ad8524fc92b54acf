//! y = |A(x)| elementwise for a linear A: real-valued phase retrieval (`Abs(Matrix("A.npy"))`),
//! in two dimensions the magnitude of a projection.

use super::{Operator, Task};
use crate::error::{Error, Result};
use burn::tensor::Tensor;

pub struct Abs {
    inner: Box<dyn Operator>,
}

impl Abs {
    pub fn new(inner: Box<dyn Operator>) -> Result<Self> {
        if !inner.is_linear() {
            return Err(Error::invalid(
                "Abs",
                format!(
                    "takes a linear operator, and {} is not linear",
                    inner.name()
                ),
            ));
        }
        Ok(Self { inner })
    }
}

impl Operator for Abs {
    fn name(&self) -> String {
        format!("Abs({})", self.inner.name())
    }
    fn task(&self) -> Task {
        Task::Other
    }
    fn input_shape(&self) -> [usize; 3] {
        self.inner.input_shape()
    }
    fn output_shape(&self) -> [usize; 3] {
        self.inner.output_shape()
    }
    fn output_npy_shape(&self) -> Vec<usize> {
        self.inner.output_npy_shape()
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.inner.forward(x).abs()
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        self.inner.adjoint(y)
    }
    fn is_linear(&self) -> bool {
        false
    }
    /// Aᵀ(sign(Ax)·v); at Ax = 0 the sign is 0 (the subgradient's midpoint).
    fn vjp(&self, x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        self.inner.adjoint(self.inner.forward(x).sign() * v)
    }
    fn norm_sq(&self, device: &burn::tensor::Device) -> Result<f64> {
        self.inner.norm_sq(device)
    }
    fn view_measurement(&self, y: &[f32]) -> Option<(Vec<f32>, Vec<bool>)> {
        self.inner.view_measurement(y)
    }
}
