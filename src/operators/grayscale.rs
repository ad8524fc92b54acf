//! y = the mean of the channels: [1, H, W] (colourisation).

use super::{Operator, Structure};
use crate::error::{Error, Result};
use burn::tensor::Tensor;

pub struct Grayscale {
    shape: [usize; 3],
}

impl Grayscale {
    pub fn new(shape: [usize; 3]) -> Result<Self> {
        if shape[0] == 0 {
            return Err(Error::invalid("Grayscale", "the image has no channels"));
        }
        Ok(Self { shape })
    }
}

impl Operator for Grayscale {
    fn name(&self) -> String {
        "Grayscale".into()
    }
    fn task(&self) -> super::Task {
        super::Task::Colourise
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        [1, self.shape[1], self.shape[2]]
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.mean_dim(1)
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = y.dims();
        let c = self.shape[0];
        y.expand([b, c, h, w]).div_scalar(c as f64)
    }
    fn structure(&self) -> Structure {
        // Each row averages the C channels of its pixel: norm 1/√C.
        Structure::OrthogonalRows(1.0 / (self.shape[0] as f64).sqrt())
    }
    fn solve_shifted(&self, c: f64, sigma_y: f64, b: Tensor<4>) -> Tensor<4> {
        // AᵀA = P/C with P the projector onto channel-constant images.
        let ch = self.shape[0] as f64;
        let [bs, _, h, w] = b.dims();
        let pb = b.clone().mean_dim(1).expand([bs, self.shape[0], h, w]);
        let on_range = 1.0 / (c + 1.0 / (ch * sigma_y * sigma_y));
        b.div_scalar(c) + pb.mul_scalar(on_range - 1.0 / c)
    }
}
