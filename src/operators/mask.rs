//! y = mask ⊙ x (inpainting): 1 = seen, 0 = missing. The mask is [H, W] (shared by the
//! channels) or [C, H, W]. Fractional values act as per-pixel gains.

use super::{Operator, Structure};
use crate::error::{Error, Result};
use crate::tensor;
use burn::tensor::{Device, Tensor};

pub struct Mask {
    shape: [usize; 3],
    /// [1, C or 1, H, W]
    mask: Tensor<4>,
    mask_sq: Tensor<4>,
    channels: usize,
}

impl Mask {
    pub fn from_array(
        shape: [usize; 3],
        arr_shape: &[usize],
        data: Vec<f32>,
        device: &Device,
    ) -> Result<Self> {
        let [c, h, w] = shape;
        let channels = match arr_shape {
            [mh, mw] if [*mh, *mw] == [h, w] => 1,
            [mc, mh, mw] if [*mc, *mh, *mw] == [c, h, w] => c,
            _ => {
                return Err(Error::shape(
                    "mask",
                    format!("[{h}, {w}] or [{c}, {h}, {w}]"),
                    arr_shape,
                ));
            }
        };
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "mask",
                format!("non-finite value at flat index {i}"),
            ));
        }
        let mask = tensor::from_vec(data, [1, channels, h, w], device);
        Ok(Self {
            shape,
            mask_sq: mask.clone().square(),
            mask,
            channels,
        })
    }

    /// The mask as [1, C or 1, H, W].
    pub fn mask(&self) -> &Tensor<4> {
        &self.mask
    }
}

impl Operator for Mask {
    fn name(&self) -> String {
        format!(
            "Mask({} channel{})",
            self.channels,
            if self.channels == 1 { "" } else { "s" }
        )
    }
    fn task(&self) -> super::Task {
        super::Task::Inpaint
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
        x * self.mask.clone()
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        y * self.mask.clone()
    }
    fn solve_shifted(&self, c: f64, sigma_y: f64, b: Tensor<4>) -> Tensor<4> {
        // AᵀA is diagonal: mask².
        b / (self
            .mask_sq
            .clone()
            .div_scalar(sigma_y * sigma_y)
            .add_scalar(c))
    }
}
