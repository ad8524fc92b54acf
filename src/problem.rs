//! An inverse problem: prior + operator + measurement y + noise (level σ_y, and its model).

use crate::error::{Error, Result};
use crate::noise_model::NoiseModel;
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
    /// The Gaussian σ of the likelihood: the recipe's noise_sigma and the operator's model
    /// error in quadrature, or for photon noise the equivalent σ of a dark value
    /// ([`NoiseModel::equivalent_sigma`]). Step sizes and the linear-Gaussian samplers read it.
    pub sigma_y: f64,
    /// The Gaussian noise the recipe states (photon noise's read noise), before the model error.
    pub read_sigma: f64,
    pub noise: NoiseModel,
    pub device: Device,
    /// The ground truth when it is known (simulated measurements), [1, C, H, W].
    pub truth: Option<Tensor<4>>,
    /// The classical restoration, computed once: the window's first answer and a warm start
    /// both want it, and for a blur it is a Wiener solve.
    classical: OnceLock<Option<(Vec<f32>, &'static str)>>,
}

impl Problem {
    /// A problem with Gaussian noise of σ_y (0 only where the operator has a model error).
    pub fn new(
        prior: Arc<dyn Denoiser>,
        operator: Arc<dyn Operator>,
        y: Tensor<4>,
        sigma_y: f64,
        device: Device,
    ) -> Result<Self> {
        Self::with_noise(prior, operator, y, (NoiseModel::Gaussian, sigma_y), device)
    }

    /// A problem with the given noise model and its Gaussian σ (photon noise's read noise).
    pub fn with_noise(
        prior: Arc<dyn Denoiser>,
        operator: Arc<dyn Operator>,
        y: Tensor<4>,
        (noise, sigma_y): (NoiseModel, f64),
        device: Device,
    ) -> Result<Self> {
        noise.check()?;
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
        // Read back once: the finiteness check and the photon noise's equivalent σ share it.
        let y_host = tensor::to_vec(&y)?;
        if y_host.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("measurement y", "contains NaN or Inf"));
        }
        let effective = noise
            .equivalent_sigma(sigma_y, &y_host)
            .hypot(operator.model_error_sigma());
        if !(sigma_y.is_finite() && sigma_y >= 0.0 && effective > 0.0) {
            return Err(Error::invalid(
                "noise_sigma",
                format!(
                    "must be a positive number for {} with Gaussian noise, got {sigma_y}",
                    operator.name()
                ),
            ));
        }
        Ok(Self {
            prior,
            operator,
            y,
            sigma_y: effective,
            read_sigma: sigma_y,
            noise,
            device,
            truth: None,
            classical: OnceLock::new(),
        })
    }

    /// Linear A, Gaussian noise and no model error: what DDRM, ΠGDM, EPS and the exact
    /// posterior need (Aᵀ, closed-form solves).
    pub fn is_linear_gaussian(&self) -> bool {
        self.operator.is_linear()
            && self.noise.is_gaussian()
            && self.operator.model_error_sigma() == 0.0
    }

    /// Photon noise through a linear diagonal A (denoising, inpainting): the samplers that need
    /// Gaussian noise take it through its Gaussian approximation (`samplers::whitened`).
    pub fn is_whitenable(&self) -> bool {
        self.operator.is_linear()
            && !self.noise.is_gaussian()
            && self.operator.model_error_sigma() == 0.0
            && matches!(
                self.operator.structure(),
                crate::operators::Structure::Diagonal
            )
    }

    /// A decoded round trip (JPEG) with Gaussian noise: ΠGDM guides with y − A(x̂0).
    pub fn is_round_trip(&self) -> bool {
        self.operator.is_round_trip() && self.noise.is_gaussian()
    }

    /// The measurement as a phrase for messages ("Jpeg(quality: 10) with Gaussian noise").
    pub fn measurement_label(&self) -> String {
        format!("{} with {}", self.operator.name(), self.noise.label())
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

    /// The σ the noise model reads: the read noise for photons, σ_y for Gaussian noise.
    fn model_sigma(&self) -> f64 {
        if self.noise.is_gaussian() {
            self.sigma_y
        } else {
            self.read_sigma
        }
    }

    /// ∇_x R(x) with R(x) = −log p(y | x): J_A(x)ᵀ ∂R/∂A(x); Aᵀ(A x − y)/σ_y² for a linear A
    /// and Gaussian noise.
    pub fn data_grad(&self, x: Tensor<4>) -> Tensor<4> {
        let b = x.dims()[0];
        let z = self.operator.forward(x.clone());
        let g = self.noise.nll_grad(self.model_sigma(), self.y_batch(b), z);
        self.operator.vjp(x, g)
    }

    /// σ_y² times the deviance of every chain, [B, 1, 1, 1]: ‖y − A(x)‖² for Gaussian noise,
    /// so the Gaussian samplers' scales hold for every noise model. Differentiable.
    pub fn misfit(&self, x: Tensor<4>) -> Tensor<4> {
        let b = x.dims()[0];
        let z = self.operator.forward(x);
        let d = self.noise.deviance(self.model_sigma(), self.y_batch(b), z);
        d.mul_scalar(self.sigma_y * self.sigma_y)
    }

    /// The residual DPS takes the norm of: y − A(x) for Gaussian noise; for photons each value
    /// weighted by σ_y/√Var(y) as y suggests it (the paper's weighted least squares).
    pub fn weighted_residual(&self, x: Tensor<4>) -> Tensor<4> {
        let r = self.residual(x);
        if self.noise.is_gaussian() {
            return r;
        }
        let var = self.noise.variance_from_y(self.read_sigma, self.y.clone());
        let b = r.dims()[0];
        let [_, c, h, w] = var.dims();
        r * var
            .sqrt()
            .recip()
            .mul_scalar(self.sigma_y)
            .expand([b, c, h, w])
    }

    /// √(deviance/m) for every chain: near 1 for a sample consistent with the noise
    /// (‖y − A(x)‖ / (σ_y √m) for Gaussian noise).
    pub fn normalized_residuals(&self, x: &Tensor<4>) -> Result<Vec<f64>> {
        let m = self.operator.measurement_len() as f64;
        let [b, c, h, w] = x.dims();
        // Chain by chain: A(x) − y of every chain at once is a whole-picture temporary per
        // chain, at the end of a run when its figures need the memory.
        let mut out = Vec::with_capacity(b);
        for j in 0..b {
            let xj = x.clone().slice([j..j + 1, 0..c, 0..h, 0..w]);
            let r = self.misfit(xj);
            let s = tensor::to_f64(&r)?.first().copied().unwrap_or(f64::NAN);
            out.push(s.max(0.0).sqrt() / (self.sigma_y * m.sqrt()));
        }
        Ok(out)
    }

    /// y as a host vector in f64.
    pub fn y_f64(&self) -> Result<Vec<f64>> {
        tensor::to_f64(&self.y)
    }
}
