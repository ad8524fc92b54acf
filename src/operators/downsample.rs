//! y = the mean of each f×f block of every channel: [C, H/f, W/f] (super-resolution).

use super::{Operator, Structure};
use crate::error::{Error, Result};
use burn::tensor::Tensor;

pub struct Downsample {
    shape: [usize; 3],
    factor: usize,
}

impl Downsample {
    pub fn new(shape: [usize; 3], factor: usize) -> Result<Self> {
        let [_, h, w] = shape;
        if factor == 0 {
            return Err(Error::invalid(
                "Downsample",
                "the factor must be at least 1",
            ));
        }
        if h % factor != 0 || w % factor != 0 {
            return Err(Error::invalid(
                "Downsample",
                format!("factor {factor} does not divide the image size {h}x{w}"),
            ));
        }
        Ok(Self { shape, factor })
    }

    /// Nearest-neighbour upsampling (each value copied to its f×f block), no scaling.
    fn upsample(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = y.dims();
        let f = self.factor;
        y.reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, f, w, f])
            .reshape([b, c, h * f, w * f])
    }
}

impl Operator for Downsample {
    fn name(&self) -> String {
        format!("Downsample({})", self.factor)
    }
    fn task(&self) -> super::Task {
        super::Task::SuperResolution
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        let [c, h, w] = self.shape;
        [c, h / self.factor, w / self.factor]
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let f = self.factor;
        x.reshape([b, c, h / f, f, w / f, f])
            .mean_dims(&[3, 5])
            .reshape([b, c, h / f, w / f])
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        let f2 = (self.factor * self.factor) as f64;
        self.upsample(y).div_scalar(f2)
    }
    fn structure(&self) -> Structure {
        // Each row averages its own f×f block: norm √(f²/f⁴) = 1/f.
        Structure::OrthogonalRows(1.0 / self.factor as f64)
    }
    fn solve_shifted(&self, c: f64, sigma_y: f64, b: Tensor<4>) -> Tensor<4> {
        // AᵀA = P/f², with P the projector onto block-constant images (P = up∘down).
        // On range(P) the system is (c + 1/(f²σ²)), on its complement c.
        let f2 = (self.factor * self.factor) as f64;
        let pb = self.upsample(self.forward(b.clone()));
        let on_range = 1.0 / (c + 1.0 / (f2 * sigma_y * sigma_y));
        b.clone().div_scalar(c) + pb.mul_scalar(on_range - 1.0 / c)
    }
}
