//! An inverse problem: prior + operator + measurement y + noise level σ_y.

use crate::error::{Error, Result};
use crate::operators::{Operator, check_shape};
use crate::priors::Denoiser;
use crate::tensor;
use burn::tensor::{Device, Tensor};
use std::sync::{Arc, OnceLock};

pub struct Problem {
    pub prior: Arc<dyn Denoiser>,
    pub operator: Arc<dyn Operator>,
    /// [1, C', H', W']
    pub y: Tensor<4>,
    pub sigma_y: f64,
    pub device: Device,
    /// The ground truth when it is known (simulated measurements), [1, C, H, W].
    pub truth: Option<Tensor<4>>,
    /// The classical restoration, computed once: the window's first answer and a warm start
    /// both want it, and for a blur it is a Wiener solve.
    classical: OnceLock<Option<(Vec<f32>, &'static str)>>,
}

impl Problem {
    pub fn new(
        prior: Arc<dyn Denoiser>,
        operator: Arc<dyn Operator>,
        y: Tensor<4>,
        sigma_y: f64,
        device: Device,
    ) -> Result<Self> {
        if prior.shape() != operator.input_shape() {
            return Err(Error::shape(
                "operator input vs prior",
                prior.shape(),
                operator.input_shape(),
            ));
        }
        check_shape("measurement y", &y, operator.output_shape())?;
        if y.dims()[0] != 1 {
            return Err(Error::shape("measurement y batch", 1, y.dims()[0]));
        }
        if !(sigma_y.is_finite() && sigma_y > 0.0) {
            return Err(Error::invalid(
                "noise_sigma",
                format!("must be a positive number, got {sigma_y}"),
            ));
        }
        if tensor::non_finite_chains(&y)? > 0 {
            return Err(Error::invalid("measurement y", "contains NaN or Inf"));
        }
        Ok(Self {
            prior,
            operator,
            y,
            sigma_y,
            device,
            truth: None,
            classical: OnceLock::new(),
        })
    }

    pub fn with_truth(mut self, truth: Tensor<4>) -> Result<Self> {
        check_shape("truth", &truth, self.shape())?;
        self.truth = Some(truth);
        Ok(self)
    }

    /// (C, H, W) of x.
    pub fn shape(&self) -> [usize; 3] {
        self.operator.input_shape()
    }

    pub fn dim(&self) -> usize {
        self.shape().iter().product()
    }

    /// y broadcast to a batch of `b` chains.
    pub fn y_batch(&self, b: usize) -> Tensor<4> {
        let [_, c, h, w] = self.y.dims();
        self.y.clone().expand([b, c, h, w])
    }

    /// The classical restoration of y as [1, C, H, W] (Gaussian interpolation of holes,
    /// bicubic upscaling, Wiener deconvolution, y itself: [`crate::photo::first_answer`]), or
    /// None for an operator without one (a general matrix).
    pub fn classical_estimate(&self) -> Result<Option<Tensor<4>>> {
        let [c, h, w] = self.shape();
        Ok(self
            .classical_answer()?
            .map(|(x, _)| tensor::from_vec(x, [1, c, h, w], &self.device)))
    }

    /// The classical restoration as values in x's layout and its name ("bicubic", …), computed
    /// on the first call and kept.
    pub fn classical_answer(&self) -> Result<Option<(Vec<f32>, &'static str)>> {
        if let Some(known) = self.classical.get() {
            return Ok(known.clone());
        }
        let op = self.operator.as_ref();
        let (y_view, seen) = crate::operators::display_measurement(op, self.y.clone())?;
        let y = tensor::to_vec(&self.y)?;
        let answer = crate::photo::first_answer(op, &y, &y_view, &seen)?;
        Ok(self.classical.get_or_init(|| answer).clone())
    }

    /// y − A(x) for a batch x.
    pub fn residual(&self, x: Tensor<4>) -> Tensor<4> {
        let b = x.dims()[0];
        self.y_batch(b) - self.operator.forward(x)
    }

    /// ∇_x R(x) with R(x) = ‖y − A x‖²/(2σ_y²): Aᵀ(A x − y)/σ_y².
    pub fn data_grad(&self, x: Tensor<4>) -> Tensor<4> {
        let r = self.residual(x);
        self.operator
            .adjoint(r)
            .div_scalar(-(self.sigma_y * self.sigma_y))
    }

    /// ‖y − A(x)‖ / (σ_y √m) for every chain: near 1 for a sample consistent with the noise.
    pub fn normalized_residuals(&self, x: &Tensor<4>) -> Result<Vec<f64>> {
        let m = self.operator.measurement_len() as f64;
        let [b, c, h, w] = x.dims();
        // Chain by chain: A(x) − y of every chain at once is a whole-picture temporary per
        // chain, at the end of a run when its figures need the memory.
        let mut out = Vec::with_capacity(b);
        for j in 0..b {
            let xj = x.clone().slice([j..j + 1, 0..c, 0..h, 0..w]);
            let r = tensor::sum_sq(self.residual(xj));
            let s = tensor::to_f64(&r)?.first().copied().unwrap_or(f64::NAN);
            out.push(s.sqrt() / (self.sigma_y * m.sqrt()));
        }
        Ok(out)
    }

    /// y as a host vector in f64.
    pub fn y_f64(&self) -> Result<Vec<f64>> {
        tensor::to_f64(&self.y)
    }
}
