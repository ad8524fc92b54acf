//! Forward operators A of y = A(x) + noise, on batched image tensors [B, C, H, W].
//!
//! The linear ones have an exact adjoint and a solve of (c·I + AᵀA/σ_y²) z = b: closed form
//! where the structure allows, conjugate gradient otherwise. The nonlinear ones (`Clip`, `Abs`,
//! `PhaseRetrieval`, `Jpeg`) give their vector-Jacobian product instead; samplers that need a
//! linear A refuse them before calling anything else (`samplers::measurement_support`).
//! Measurements are kept as 4-D tensors too ([B, C', H', W']); `Matrix` uses [B, m, 1, 1] and
//! reads/writes y as an [m] array.

mod abs;
mod blur;
mod clip;
mod downsample;
mod grayscale;
mod identity;
pub mod jpeg;
mod mask;
mod matrix;
mod phase_retrieval;

pub use abs::Abs;
pub use blur::Blur;
pub use clip::Clip;
pub use downsample::Downsample;
pub use grayscale::Grayscale;
pub use identity::Identity;
pub use jpeg::Jpeg;
pub use mask::Mask;
pub use matrix::MatrixOp;
pub use phase_retrieval::PhaseRetrieval;

use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::tensor;
use burn::tensor::{Device, Tensor};

/// What kind of restoration an operator asks for (`Auto` picks its sampler by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Task {
    Denoise,
    Inpaint,
    SuperResolution,
    Deblur,
    Colourise,
    /// JPEG artefact removal (a nonlinear, quantising round trip).
    Dejpeg,
    /// Recovering clipped highlights.
    Declip,
    /// A picture from its Fourier magnitude.
    PhaseRetrieval,
    /// Any other measurement (random projections, magnitudes of projections…).
    Other,
}

impl Task {
    pub fn label(self) -> &'static str {
        match self {
            Task::Denoise => "denoising",
            Task::Inpaint => "inpainting",
            Task::SuperResolution => "super-resolution",
            Task::Deblur => "deblurring",
            Task::Colourise => "colourisation",
            Task::Dejpeg => "JPEG artefact removal",
            Task::Declip => "highlight recovery",
            Task::PhaseRetrieval => "phase retrieval",
            Task::Other => "a general measurement",
        }
    }
}

pub trait Operator: Send + Sync {
    /// Short name for messages and summaries, e.g. "Downsample(2)".
    fn name(&self) -> String;
    /// The restoration this operator stands for.
    fn task(&self) -> Task {
        Task::Other
    }
    /// (C, H, W) of x.
    fn input_shape(&self) -> [usize; 3];
    /// (C', H', W') of y as held in tensors.
    fn output_shape(&self) -> [usize; 3];
    /// Shape of y in `.npy` files (the contract's form).
    fn output_npy_shape(&self) -> Vec<usize> {
        self.output_shape().to_vec()
    }
    /// A(x) for x of shape [B, C, H, W]. Written in burn's differentiable operations, so
    /// samplers that differentiate through a network (DPS, noise-space Langevin) go through A
    /// by autodiff.
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;
    /// Aᵀ(y) for y of shape [B, C', H', W']; for a nonlinear operator the adjoint of its linear
    /// part (what `vjp` uses where the operator is locally that linear map).
    fn adjoint(&self, y: Tensor<4>) -> Tensor<4>;
    /// False for a nonlinear A: only samplers that use A through `forward` and `vjp` take it.
    fn is_linear(&self) -> bool {
        true
    }
    /// J_A(x)ᵀ v, the vector-Jacobian product at x (v shaped like y): Aᵀv for a linear A.
    fn vjp(&self, x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
        let _ = x;
        self.adjoint(v)
    }
    /// Whether A(x) = h†(h(x)) for an encoder h and its decoder h† (JPEG), so y is already
    /// decoded and h†(y) − h†(h(x)) = y − A(x): ΠGDM's pseudo-inverse guidance for such A.
    fn is_round_trip(&self) -> bool {
        false
    }
    /// The standard deviation of the error A makes beyond its differentiable model, in data
    /// units (JPEG's rounding): added to σ_y in quadrature, so a deterministic round trip
    /// (`noise_sigma: 0`) still has a likelihood of finite width.
    fn model_error_sigma(&self) -> f64 {
        0.0
    }
    /// y shown in x's space and which values it sees, for operators whose y is not an image
    /// of x's kind (a Fourier magnitude); None: the linear display (see
    /// [`display_measurement`]).
    fn view_measurement(&self, y: &[f32]) -> Option<(Vec<f32>, Vec<bool>)> {
        let _ = y;
        None
    }
    /// (c·I + AᵀA/σ_y²)⁻¹ b, c > 0. The default is conjugate gradient.
    fn solve_shifted(&self, c: f64, sigma_y: f64, b: Tensor<4>) -> Tensor<4> {
        let inv_var = 1.0 / (sigma_y * sigma_y);
        conjugate_gradient(
            |v| v.clone().mul_scalar(c) + self.adjoint(self.forward(v)).mul_scalar(inv_var),
            b,
            200,
            1e-6,
        )
    }
    /// What is known of A's singular value decomposition (DDRM reads it; see [`Structure`]).
    fn structure(&self) -> Structure {
        Structure::Dense
    }
    /// ‖A‖², the largest eigenvalue of AᵀA: in closed form for the diagonal and orthogonal-row
    /// structures, else by 30 power iterations on a fixed start (the step sizes of ALMC, CPS
    /// and DAPS scale with it).
    fn norm_sq(&self, device: &Device) -> Result<f64> {
        let [c, h, w] = self.input_shape();
        match self.structure() {
            Structure::OrthogonalRows(s) => return Ok(s * s),
            Structure::Diagonal => {
                let ones = Tensor::<4>::ones([1, c, h, w], device);
                let diag = tensor::to_f64(&self.adjoint(self.forward(ones)))?;
                return Ok(diag.iter().copied().fold(0.0, f64::max));
            }
            Structure::Separable(_) | Structure::Dense => {}
        }
        let mut v = tensor::normal(&mut tensor::rng(12345), [1, c, h, w], device);
        let mut est = 0.0;
        for _ in 0..30 {
            let n = tensor::to_f64(&tensor::sum_sq(v.clone()))?[0]
                .sqrt()
                .max(1e-30);
            v = v.div_scalar(n);
            let av = self.adjoint(self.forward(v.clone()));
            est = tensor::to_f64(&tensor::inner(v.clone(), av.clone()))?[0];
            v = av;
        }
        Ok(est.max(0.0))
    }
    /// Number of measurements m.
    fn measurement_len(&self) -> usize {
        self.output_shape().iter().product()
    }
    /// The dense [m, d] matrix of A, in f64, built by applying A to the basis vectors.
    fn dense(&self, device: &Device) -> Result<Mat> {
        let [c, h, w] = self.input_shape();
        let d = c * h * w;
        let m = self.measurement_len();
        let mut out = Mat::zeros(m, d);
        // In blocks, so a large d does not allocate a d x d identity at once.
        let block = 256.min(d.max(1));
        let mut start = 0;
        while start < d {
            let n = block.min(d - start);
            let mut basis = vec![0.0f32; n * d];
            for i in 0..n {
                basis[i * d + start + i] = 1.0;
            }
            let y = self.forward(tensor::from_vec(basis, [n, c, h, w], device));
            let cols = tensor::to_vec(&y)?;
            for i in 0..n {
                for r in 0..m {
                    out.set(r, start + i, f64::from(cols[i * m + r]));
                }
            }
            start += n;
        }
        Ok(out)
    }
}

/// The spectral structure of A, as far as it is known in closed form (after deepinv's
/// decomposable physics): it decides how DDRM gets its SVD and how ‖A‖² is found.
#[derive(Debug, Clone)]
pub enum Structure {
    /// AᵀA is diagonal in pixel space (identity, masks): V = I, s² is that diagonal.
    Diagonal,
    /// The rows of A are orthogonal with equal norm s (block averages, the channel mean):
    /// A = I·s·Vᵀ with V = Aᵀ/s.
    OrthogonalRows(f64),
    /// A acts on every channel as X ↦ B_h X B_wᵀ (separable blur), its SVD the Kronecker
    /// product of the two 1-D ones, given in closed form: singular values s_h (H) and s_w (W),
    /// right singular vectors as the columns of V_h and V_w, [1, 1, H, H] and [1, 1, W, W] on
    /// the operator's device (the operator's own copies: at 4096² each is 64 MiB).
    Separable(Box<SeparableSvd>),
    /// Nothing known: a dense SVD of the [m, d] matrix (small d only).
    Dense,
}

/// The closed-form SVD of a separable operator ([`Structure::Separable`]).
#[derive(Debug, Clone)]
pub struct SeparableSvd {
    pub sh: Vec<f64>,
    pub vh: Tensor<4>,
    pub sw: Vec<f64>,
    pub vw: Tensor<4>,
}

/// The operator as a recipe names it (fixed by the command-line contract).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OperatorSpec {
    Identity,
    Mask(String),
    Downsample(usize),
    Blur {
        sigma: f64,
    },
    Grayscale,
    Matrix(String),
    /// The JPEG round trip at quality 1–100 (4:2:0 chroma, the IJG tables).
    Jpeg {
        quality: u32,
    },
    /// y = clip(g·x, −1, 1): over-exposure.
    Clip {
        gain: f64,
    },
    /// |F(pad(x'))| with x' = (x + 1)/2 in [0, 1], padded by oversample/8 of each side.
    PhaseRetrieval {
        oversample: f64,
    },
    /// |A(x)| elementwise for a linear A.
    Abs(Box<OperatorSpec>),
}

impl OperatorSpec {
    /// Whether the operator is linear (as [`Operator::is_linear`] says of the built one).
    pub fn is_linear(&self) -> bool {
        !matches!(
            self,
            OperatorSpec::Jpeg { .. }
                | OperatorSpec::Clip { .. }
                | OperatorSpec::PhaseRetrieval { .. }
                | OperatorSpec::Abs(_)
        )
    }

    /// The file the operator reads (a mask, a matrix), inside `Abs` too.
    pub fn file_mut(&mut self) -> Option<&mut String> {
        match self {
            OperatorSpec::Mask(f) | OperatorSpec::Matrix(f) => Some(f),
            OperatorSpec::Abs(inner) => inner.file_mut(),
            _ => None,
        }
    }

    pub fn file(&self) -> Option<&String> {
        match self {
            OperatorSpec::Mask(f) | OperatorSpec::Matrix(f) => Some(f),
            OperatorSpec::Abs(inner) => inner.file(),
            _ => None,
        }
    }
}

/// Builds an operator for images of `shape`; file paths are resolved against `base`.
pub fn build(
    spec: &OperatorSpec,
    shape: [usize; 3],
    base: &std::path::Path,
    device: &Device,
) -> Result<Box<dyn Operator>> {
    Ok(match spec {
        OperatorSpec::Identity => Box::new(Identity::new(shape)),
        OperatorSpec::Mask(file) => {
            let path = base.join(file);
            let arr = crate::npy::read(&path)?;
            Box::new(
                Mask::from_array(shape, &arr.shape, arr.data, device)
                    .map_err(|e| e.in_file(&path))?,
            )
        }
        OperatorSpec::Downsample(f) => Box::new(Downsample::new(shape, *f)?),
        OperatorSpec::Blur { sigma } => Box::new(Blur::new(shape, *sigma, device)?),
        OperatorSpec::Grayscale => Box::new(Grayscale::new(shape)?),
        OperatorSpec::Matrix(file) => {
            let path = base.join(file);
            let arr = crate::npy::read(&path)?;
            Box::new(
                MatrixOp::from_array(shape, &arr.shape, arr.data, device)
                    .map_err(|e| e.in_file(&path))?,
            )
        }
        OperatorSpec::Jpeg { quality } => Box::new(Jpeg::new(shape, *quality, device)?),
        OperatorSpec::Clip { gain } => Box::new(Clip::new(shape, *gain)?),
        OperatorSpec::PhaseRetrieval { oversample } => {
            Box::new(PhaseRetrieval::new(shape, *oversample, device)?)
        }
        OperatorSpec::Abs(inner) => Box::new(Abs::new(build(inner, shape, base, device)?)?),
    })
}

/// J_A(x)ᵀ v by autodiff through `forward`: the VJP of the nonlinear operators whose
/// Jacobian has no cheaper closed form.
pub fn autodiff_vjp(op: &dyn Operator, x: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let leaf = x.clone().autodiff().require_grad();
    let out = op.forward(leaf.clone());
    let grads = (out * v.autodiff()).sum().backward();
    match leaf.grad(&grads) {
        Some(g) => g.without_autodiff(),
        // Only when A does not depend on x at all.
        None => x.zeros_like(),
    }
}

/// Batched conjugate gradient for an SPD operator: every chain gets its own step sizes.
/// Stops when every chain's residual is below `rel_tol` times its right-hand side.
pub fn conjugate_gradient(
    apply: impl Fn(Tensor<4>) -> Tensor<4>,
    b: Tensor<4>,
    max_iter: usize,
    rel_tol: f64,
) -> Tensor<4> {
    let tiny = 1e-30;
    let mut x = b.zeros_like();
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rs = tensor::sum_sq(r.clone());
    let rs0 = rs.clone().clamp_min(tiny);
    for it in 0..max_iter {
        let ap = apply(p.clone());
        let alpha = rs.clone() / (tensor::inner(p.clone(), ap.clone()) + tiny);
        x = x + p.clone() * alpha.clone();
        r = r - ap * alpha;
        let rs_new = tensor::sum_sq(r.clone());
        // Checking convergence reads back from the device: do it every few iterations only.
        if it % 4 == 3 {
            let ratio = (rs_new.clone() / rs0.clone()).max();
            if let Ok(v) = tensor::to_vec(&ratio)
                && v.first().is_some_and(|v| *v <= (rel_tol * rel_tol) as f32)
            {
                break;
            }
        }
        let beta = rs_new.clone() / (rs + tiny);
        p = r.clone() + p * beta;
        rs = rs_new;
    }
    x
}

/// Checks that a tensor is [B, C, H, W] with the given trailing shape.
pub fn check_shape(what: &str, t: &Tensor<4>, expected: [usize; 3]) -> Result<()> {
    let [_, c, h, w] = t.dims();
    if [c, h, w] != expected {
        return Err(Error::shape(what, expected, [c, h, w]));
    }
    Ok(())
}

/// y shown in x's image space, and which pixels A sees: y itself when A keeps the shape, else
/// Aᵀy / Aᵀ1 (a low-resolution image blown up, a grey image in every channel); seen = Aᵀ1 ≠ 0.
/// `y` is [1, C', H', W'].
pub fn display_measurement(
    op: &dyn Operator,
    y: Tensor<4>,
) -> crate::error::Result<(Vec<f32>, Vec<bool>)> {
    if let Some(view) = op.view_measurement(&crate::tensor::to_vec(&y)?) {
        return Ok(view);
    }
    let device = y.device();
    let [c, h, w] = op.output_shape();
    let ones = Tensor::<4>::ones([1, c, h, w], &device);
    let cover = crate::tensor::to_vec(&op.adjoint(ones))?;
    let seen: Vec<bool> = cover.iter().map(|v| v.abs() > 1e-12).collect();
    let view = if op.output_shape() == op.input_shape() {
        crate::tensor::to_vec(&y)?
    } else {
        let back = crate::tensor::to_vec(&op.adjoint(y))?;
        back.iter()
            .zip(&cover)
            .map(|(b, c)| if c.abs() > 1e-12 { b / c } else { 0.0 })
            .collect()
    };
    Ok((view, seen))
}

/// The measurement as an image in x's space, batched: Aᵀy / Aᵀ1 where Aᵀ1 ≠ 0 and 0 elsewhere
/// for masks and shape-changing operators (the zero-filled masked picture, the
/// nearest-upsampled low-resolution image, a grey image in every channel); y itself for a blur.
/// The EPS fine-tuned denoiser's extra input. `y` is [B, C', H', W'].
pub fn observation_image(op: &dyn Operator, y: Tensor<4>) -> Tensor<4> {
    if op.output_shape() == op.input_shape() && !matches!(op.structure(), Structure::Diagonal) {
        return y;
    }
    let [c, h, w] = op.output_shape();
    let cover = op.adjoint(Tensor::<4>::ones([1, c, h, w], &y.device()));
    let seen = cover.clone().abs().greater_elem(1e-12).float();
    // Where A sees nothing Aᵀy is 0 too; adding (1 − seen) keeps the division finite there.
    op.adjoint(y) / (cover + seen.neg().add_scalar(1.0))
}
