//! y = x: denoising.

use super::{Operator, Structure};
use burn::tensor::Tensor;

pub struct Identity {
    shape: [usize; 3],
}

impl Identity {
    pub fn new(shape: [usize; 3]) -> Self {
        Self { shape }
    }
}

impl Operator for Identity {
    fn name(&self) -> String {
        "Identity".into()
    }
    fn task(&self) -> super::Task {
        super::Task::Denoise
    }
    fn structure(&self) -> Structure {
        Structure::Diagonal
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        y
    }
    fn solve_shifted(&self, c: f64, sigma_y: f64, b: Tensor<4>) -> Tensor<4> {
        b.div_scalar(c + 1.0 / (sigma_y * sigma_y))
    }
}
