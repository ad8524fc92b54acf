//! y = A x for an explicit [m, d] matrix acting on the flattened image (C order).

use super::Operator;
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::tensor;
use burn::tensor::{Device, Tensor};

pub struct MatrixOp {
    shape: [usize; 3],
    m: usize,
    /// Aᵀ as [d, m], so that a batch [B, d] times it gives [B, m].
    a_t: Tensor<2>,
    /// A as [m, d].
    a: Tensor<2>,
    dense: Mat,
}

impl MatrixOp {
    pub fn from_array(
        shape: [usize; 3],
        arr_shape: &[usize],
        data: Vec<f32>,
        device: &Device,
    ) -> Result<Self> {
        let d: usize = shape.iter().product();
        let (m, cols) = match arr_shape {
            [m, cols] => (*m, *cols),
            _ => return Err(Error::shape("matrix A", format!("[m, {d}]"), arr_shape)),
        };
        if cols != d || m == 0 {
            return Err(Error::shape(
                "matrix A",
                format!("[m, {d}] with m >= 1 (d = C*H*W)"),
                arr_shape,
            ));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "matrix A",
                format!("non-finite value at flat index {i}"),
            ));
        }
        let dense = Mat::from_rows(m, d, data.iter().map(|v| f64::from(*v)).collect());
        let a = tensor::from_vec(data, [m, d], device);
        Ok(Self {
            shape,
            m,
            a_t: a.clone().transpose(),
            a,
            dense,
        })
    }
}

impl Operator for MatrixOp {
    fn name(&self) -> String {
        format!("Matrix({}x{})", self.m, self.dense.cols)
    }
    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn output_shape(&self) -> [usize; 3] {
        [self.m, 1, 1]
    }
    fn output_npy_shape(&self) -> Vec<usize> {
        vec![self.m]
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, ..] = x.dims();
        x.reshape([b as i64, -1])
            .matmul(self.a_t.clone())
            .reshape([b, self.m, 1, 1])
    }
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, ..] = y.dims();
        let [c, h, w] = self.shape;
        y.reshape([b, self.m])
            .matmul(self.a.clone())
            .reshape([b, c, h, w])
    }
    fn dense(&self, _device: &Device) -> Result<Mat> {
        Ok(self.dense.clone())
    }
}
