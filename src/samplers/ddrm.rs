//! DDRM — denoising diffusion restoration models (Kawar, Elad, Ermon, Song; NeurIPS 2022).
//!
//! Works in the operator's spectral coordinates A = U diag(s) Vᵀ: x̄ = Vᵀx and
//! ȳ_i = (Uᵀy)_i/s_i = (VᵀAᵀy)_i/s_i². Per coordinate, with x̄0 = Vᵀ D(x, σ_t):
//! - s_i = 0: x̄' = x̄0 + √(1−η²) σ' (x̄ − x̄0)/σ + η σ' ξ
//! - σ' < σ_y/s_i: x̄' = x̄0 + √(1−η²) σ' (ȳ − x̄0)/(σ_y/s_i) + η σ' ξ
//! - otherwise: x̄' = (1−η_b) x̄0 + η_b ȳ + √(σ'² − η_b² σ_y²/s_i²) ξ
//!
//! The SVD is closed-form for `Identity` and `Mask` (V = I, s = the mask), for `Downsample` and
//! `Grayscale` (orthogonal rows of equal norm s: U = I, V = Aᵀ/s, so the measured coordinates are
//! A x/s and the null space is what (I − AᵀA/s²) keeps; any image size), for `Blur` the
//! Kronecker product of the SVDs of its two 1-D blur matrices (X̄ = V_hᵀ X V_w per channel,
//! s_ij = s_h,i·s_w,j; any size up to a few hundred pixels a side), and a dense SVD
//! (eigendecomposition of AᵀA in f64) for `Matrix` up to d = 2048.
//! Linear Gaussian measurements only.

use super::ddrm_damage::Damage;
use super::{ChainState, Sampler, check_steps};
use crate::error::{Error, Result};
use crate::linalg::right_singular;
use crate::operators::{SeparableSvd, Structure};
use crate::problem::Problem;
use crate::tensor::{self, Rng};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How this sampler describes itself (see [`super::SamplerInfo`]).
pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Ddrm",
    preset: "Ddrm(steps: 50)",
    help: "Denoising diffusion restoration (Kawar et al.) in the operator's SVD basis (closed form for masks, block averages, the channel mean and separable blur; dense up to d = 2048). Fields: steps, eta, eta_b, sigma_min, sigma_max, rho, warm (start at this σ from the classical restoration instead of noise at sigma_max).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::LinearGaussian,
    anneals: true,
    patch_preset: None,
};

/// `Ddrm(steps: 20, eta: 0.85, eta_b: 1.0, sigma_min: 0.002, sigma_max: 80, rho: 7, warm: None)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdrmParams {
    pub steps: usize,
    #[serde(default = "default_eta")]
    pub eta: f64,
    #[serde(default = "default_eta_b")]
    pub eta_b: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default = "super::default_rho")]
    pub rho: f64,
    /// Start at this σ from the classical restoration (Gaussian interpolation of holes,
    /// bicubic, Wiener, y) plus noise instead of pure noise at σ_max: "come closer, diffuse
    /// faster" (Chung, Sim, Ye; CVPR 2022). A patch prior in tiles cannot see a region's colour
    /// through noise above σ ≈ 2, so it guesses the photos' mean colour there, and what a hole
    /// gets at high σ stays; starting below that keeps the fill in the picture's colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<f64>,
    /// Evaluate the prior on the whole picture at every step. By default, for masks with
    /// eta_b = 1 (inpainting), a prior run in tiles evaluates only the tiles that hold a missing
    /// pixel while σ is above σ_y (there DDRM uses D(x) only in the holes, so this is exact),
    /// then once the whole picture (the observed pixels, denoised) and afterwards the holes and
    /// the pixels within [`super::ddrm_damage::NEAR_HOLE`] of them, the rest keeping that
    /// denoised value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_picture: bool,
}

fn default_eta() -> f64 {
    0.85
}
fn default_eta_b() -> f64 {
    1.0
}

/// The classical restoration a warm start begins from, when `warm` is set.
fn warm_start(params: &DdrmParams, problem: &Problem) -> Result<Option<Tensor<4>>> {
    let Some(w) = params.warm else {
        return Ok(None);
    };
    super::check_warm_grid(INFO.name, params.warm, params.sigma_max)?;
    super::warm_start(INFO.name, w, problem).map(Some)
}

/// V in the SVD A = U diag(s) Vᵀ, as applied to images.
enum Basis {
    /// V = I.
    Pixels,
    /// V as [d, d].
    Dense(Box<Tensor<2>>),
    /// V = V_h ⊗ V_w as [1, 1, H, H] and [1, 1, W, W] (separable operators).
    Kronecker(Box<(Tensor<4>, Tensor<4>)>),
}

/// Largest d for which a dense SVD is computed.
const DENSE_SVD_MAX_DIM: usize = 2048;

pub struct Ddrm {
    params: DdrmParams,
    /// Where the prior must be evaluated, when only the damage is (see
    /// [`DdrmParams::whole_picture`]).
    damage: Option<Damage>,
    /// `Some(s)`: the closed form for orthogonal rows of norm s (the other fields then hold the
    /// identity V and are unused).
    rows: Option<f64>,
    sigmas: Vec<f64>,
    /// The right singular vectors V.
    v: Basis,
    /// Singular values as [1, d], and the smallest above 1e-6 (the first coordinate whose
    /// measurement falls below σ_y as σ decreases).
    s_dev: Tensor<2>,
    s_smallest: Option<f64>,
    /// The one value every nonzero singular value has, when they agree (masks: 1): the
    /// step's cases are then one choice for all measured coordinates, no per-value masks.
    s_uniform: Option<f64>,
    /// ȳ as [1, d] (0 where s = 0).
    ybar: Tensor<2>,
    rng: Rng,
    state: ChainState,
}

impl Ddrm {
    pub fn new(params: DdrmParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        check_steps("Ddrm", params.steps)?;
        let (eta, eta_b) = (params.eta, params.eta_b);
        if !((0.0..=1.0).contains(&eta) && (0.0..=1.0).contains(&eta_b)) {
            return Err(Error::invalid(
                "Ddrm",
                format!("need 0 <= eta <= 1 and 0 <= eta_b <= 1, got {eta} and {eta_b}"),
            ));
        }
        let d = problem.dim();
        let device = &problem.device;
        let name = problem.operator.name();
        let structure = problem.operator.structure();
        if let Structure::OrthogonalRows(s) = structure {
            return Self::with_rows(params, problem, chains, seed, s);
        }
        let aty_t = problem.operator.adjoint(problem.y.clone());
        let aty = tensor::to_f64(&aty_t)?;
        let (v, s_host, vt_aty) = if let Structure::Diagonal = structure {
            // AᵀA is diagonal (identity, masks): V = I and s² is that diagonal.
            let [c, h, w] = problem.shape();
            let ones = Tensor::<4>::ones([1, c, h, w], device);
            let m2 = tensor::to_f64(&problem.operator.adjoint(problem.operator.forward(ones)))?;
            (
                Basis::Pixels,
                m2.iter().map(|v| v.max(0.0).sqrt()).collect(),
                aty,
            )
        } else if let Structure::Separable(svd) = structure {
            let SeparableSvd { sh, vh, sw, vw } = *svd;
            let [c, h, w] = problem.shape();
            let (vh, vw) = (vh.to_device(device), vw.to_device(device));
            let s: Vec<f64> = (0..c * h * w)
                .map(|k| sh[(k / w) % h] * sw[k % w])
                .collect();
            let basis = Basis::Kronecker(Box::new((vh, vw)));
            let vt_aty = tensor::to_f64(&basis_forward(&basis, aty_t))?;
            (basis, s, vt_aty)
        } else {
            if d > DENSE_SVD_MAX_DIM {
                return Err(Error::Unsupported {
                    sampler: "Ddrm".into(),
                    reason: format!(
                        "{name} has no closed-form SVD here and d = {d} is above the dense limit {DENSE_SVD_MAX_DIM}"
                    ),
                });
            }
            let a = problem.operator.dense(device)?;
            let (s, vm) = right_singular(&a);
            let vt_aty = vm.tmatvec(&aty);
            (
                Basis::Dense(Box::new(tensor::from_f64(&vm.data, [d, d], device))),
                s,
                vt_aty,
            )
        };
        // Host vectors of d values are built in f32 and dropped as soon as they are on the
        // device: at setup they were a 16-megapixel photo's peak memory.
        let ybar: Vec<f32> = s_host
            .iter()
            .zip(&vt_aty)
            .map(|(s, v)| if *s > 1e-6 { (v / (s * s)) as f32 } else { 0.0 })
            .collect();
        drop(vt_aty);
        let sigmas = super::KarrasParams::karras_grid(&params, INFO.name, problem)?;
        let mut rng = tensor::rng(seed);
        let ybar = tensor::from_vec(ybar, [1, d], device);
        let damage = match (&v, params.whole_picture || params.eta_b != 1.0) {
            (Basis::Pixels, false) => Damage::new(&s_host, problem),
            _ => None,
        };
        let mut me = Self {
            params,
            damage,
            rows: None,
            sigmas,
            v,
            s_dev: tensor::from_f64(&s_host, [1, d], device),
            s_smallest: s_host
                .iter()
                .copied()
                .filter(|s| *s > 1e-6)
                .min_by(f64::total_cmp),
            s_uniform: uniform_value(&s_host),
            ybar,
            rng: tensor::rng(0),
            state: ChainState {
                x: Tensor::zeros([chains, 1, 1, 1], device),
                x0_hat: Tensor::zeros([chains, 1, 1, 1], device),
                sigma: 0.0,
                step: 0,
                total_steps: 0,
                nfe: 0,
            },
        };
        // Initialise in spectral coordinates: ȳ-consistent where σ_T > σ_y/s, pure noise elsewhere.
        let s0 = me.sigmas[0];
        let sy = problem.sigma_y;
        let is_measured = |s: f64| s > 1e-6 && s0 > sy / s;
        let measured: Vec<f32> = (s_host.iter())
            .map(|s| if is_measured(*s) { 1.0 } else { 0.0 })
            .collect();
        let std: Vec<f32> = (s_host.iter())
            .map(|s| {
                if is_measured(*s) {
                    (s0 * s0 - (sy / s).powi(2)).sqrt() as f32
                } else {
                    s0 as f32
                }
            })
            .collect();
        drop(s_host);
        let measured = tensor::from_vec(measured, [1, d], device);
        let noise = tensor::normal(&mut rng, [chains, d, 1, 1], device).reshape([chains, d]);
        let mut xbar =
            me.ybar.clone() * measured.clone() + noise * tensor::from_vec(std, [1, d], device);
        let [c, h, w] = problem.shape();
        if let Some(start) = warm_start(&me.params, problem)? {
            // The classical restoration's coordinates where y says nothing (or too little).
            let unmeasured = measured.neg().add_scalar(1.0);
            xbar = xbar + me.pixels_to_spectral(start) * unmeasured;
        }
        let x = me
            .spectral_to_pixels(xbar, [c, h, w])
            .reshape([chains, c, h, w]);
        me.rng = rng;
        me.state = ChainState {
            x0_hat: x.zeros_like(),
            x,
            sigma: s0,
            step: 0,
            total_steps: me.params.steps,
            nfe: 0,
        };
        Ok(me)
    }

    /// DDRM for A with orthogonal rows of norm `s`: measured coordinates A x/s, ȳ = y/s.
    fn with_rows(
        params: DdrmParams,
        problem: &Problem,
        chains: usize,
        seed: u64,
        s: f64,
    ) -> Result<Self> {
        let sigmas = super::KarrasParams::karras_grid(&params, INFO.name, problem)?;
        let device = &problem.device;
        let op = problem.operator.as_ref();
        let mut rng = tensor::rng(seed);
        let [c, h, w] = problem.shape();
        let [mc, mh, mw] = op.output_shape();
        let s0 = sigmas[0];
        let sy = problem.sigma_y / s;
        let ybar = problem.y_batch(chains).div_scalar(s);
        let meas_noise = tensor::normal(&mut rng, [chains, mc, mh, mw], device);
        let measured = if s0 > sy {
            ybar + meas_noise.mul_scalar((s0 * s0 - sy * sy).sqrt())
        } else {
            meas_noise.mul_scalar(s0)
        };
        let null = Self::null_part(
            problem,
            tensor::normal(&mut rng, [chains, c, h, w], device),
            s,
        );
        let mut x = null.mul_scalar(s0) + op.adjoint(measured).div_scalar(s);
        if let Some(start) = warm_start(&params, problem)? {
            // Where y says nothing; everywhere when σ_T is below the measurement's noise.
            x = x + if s0 > sy {
                Self::null_part(problem, start, s)
            } else {
                start
            };
        }
        let total_steps = params.steps;
        Ok(Self {
            params,
            damage: None,
            rows: Some(s),
            sigmas,
            v: Basis::Pixels,
            s_dev: Tensor::zeros([1, 1], device),
            s_smallest: None,
            s_uniform: None,
            ybar: Tensor::zeros([1, 1], device),
            rng,
            state: ChainState {
                x0_hat: x.zeros_like(),
                x,
                sigma: s0,
                step: 0,
                total_steps,
                nfe: 0,
            },
        })
    }

    /// (I − AᵀA/s²) v: the part of v that A does not see.
    fn null_part(problem: &Problem, v: Tensor<4>, s: f64) -> Tensor<4> {
        let op = problem.operator.as_ref();
        v.clone() - op.adjoint(op.forward(v)).div_scalar(s * s)
    }

    /// One step of the orthogonal-rows closed form.
    fn step_rows(&mut self, problem: &Problem, s_row: f64) -> Result<()> {
        let i = self.state.step;
        let (s, sn) = (self.sigmas[i], self.sigmas[i + 1]);
        let x = self.state.x.clone();
        let [b, c, h, w] = x.dims();
        let device = &problem.device;
        let op = problem.operator.as_ref();
        let x0 = problem.prior.denoise(x.clone(), s);
        self.state.nfe += 1;
        let (eta, eta_b) = (self.params.eta, self.params.eta_b);
        let sy = problem.sigma_y / s_row;
        let noise_px = tensor::normal(&mut self.rng, [b, c, h, w], device);
        let null = Self::null_part(
            problem,
            x0.clone()
                + (x - x0.clone()).mul_scalar((1.0 - eta * eta).sqrt() * sn / s)
                + noise_px.mul_scalar(eta * sn),
            s_row,
        );
        let x0m = op.forward(x0.clone()).div_scalar(s_row);
        let ybar = problem.y_batch(b).div_scalar(s_row);
        let noise_m = tensor::normal(&mut self.rng, x0m.dims(), device);
        let measured = if sn < sy {
            x0m.clone()
                + (ybar - x0m).mul_scalar((1.0 - eta * eta).sqrt() * sn / sy)
                + noise_m.mul_scalar(eta * sn)
        } else {
            x0m.mul_scalar(1.0 - eta_b)
                + ybar.mul_scalar(eta_b)
                + noise_m.mul_scalar((sn * sn - (eta_b * sy).powi(2)).max(0.0).sqrt())
        };
        self.state.x = null + op.adjoint(measured).div_scalar(s_row);
        self.state.x0_hat = if sn == 0.0 { self.state.x.clone() } else { x0 };
        self.state.sigma = sn;
        self.state.step += 1;
        Ok(())
    }

    /// The step's spectral update when every measured coordinate has the same singular value
    /// s1: one case (below or above σ_y) for all of them, chosen by a boolean mask; chain by
    /// chain, as the general update.
    fn uniform_update(
        &mut self,
        problem: &Problem,
        xb: Tensor<2>,
        x0b: Tensor<2>,
        [s, sn]: [f64; 2],
        s1: f64,
    ) -> Tensor<2> {
        let [b, d] = xb.dims();
        let (eta, eta_b, sy) = (self.params.eta, self.params.eta_b, problem.sigma_y);
        let measured = self.s_dev.clone().greater_elem(1e-6);
        let keep = (1.0 - eta * eta).sqrt();
        let low = sn * s1 < sy;
        let high_std = (sn * sn - (eta_b * sy / s1).powi(2)).max(0.0).sqrt();
        let rows: Vec<Tensor<2>> = (0..b)
            .map(|j| {
                let xb = xb.clone().slice([j..j + 1, 0..d]);
                let x0b = x0b.clone().slice([j..j + 1, 0..d]);
                let noise =
                    tensor::normal(&mut self.rng, [1, d, 1, 1], &problem.device).reshape([1, d]);
                let null = x0b.clone()
                    + (xb - x0b.clone()).mul_scalar(keep * sn / s)
                    + noise.clone().mul_scalar(eta * sn);
                let case = if low {
                    x0b.clone()
                        + (self.ybar.clone() - x0b).mul_scalar(s1 * keep * sn / sy)
                        + noise.mul_scalar(eta * sn)
                } else {
                    x0b.mul_scalar(1.0 - eta_b)
                        + self.ybar.clone().mul_scalar(eta_b)
                        + noise.mul_scalar(high_std)
                };
                null.mask_where(measured.clone(), case)
            })
            .collect();
        Tensor::cat(rows, 0)
    }

    fn pixels_to_spectral(&self, x: Tensor<4>) -> Tensor<2> {
        basis_forward(&self.v, x)
    }

    /// Back to pixels, as [B, d].
    fn spectral_to_pixels(&self, xbar: Tensor<2>, shape: [usize; 3]) -> Tensor<2> {
        let b = xbar.dims()[0];
        match &self.v {
            Basis::Pixels => xbar,
            Basis::Dense(v) => xbar.matmul(v.as_ref().clone().transpose()),
            Basis::Kronecker(vs) => {
                let (vh, vw) = vs.as_ref();
                let [c, h, w] = shape;
                let x = xbar.reshape([b, c, h, w]);
                let x = vh.clone().expand([b, c, h, h]).matmul(x);
                x.matmul(vw.clone().transpose().expand([b, c, w, w]))
                    .reshape([b as i64, -1])
            }
        }
    }
}

/// The value every singular value above 1e-6 has, if they agree to 1e-9.
fn uniform_value(s: &[f64]) -> Option<f64> {
    let mut measured = s.iter().copied().filter(|v| *v > 1e-6);
    let first = measured.next()?;
    measured
        .all(|v| (v - first).abs() <= 1e-9 * first)
        .then_some(first)
}

/// Vᵀx for images x of shape [B, C, H, W], as [B, d].
fn basis_forward(v: &Basis, x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    match v {
        Basis::Pixels => x.reshape([b as i64, -1]),
        Basis::Dense(v) => x.reshape([b as i64, -1]).matmul(v.as_ref().clone()),
        Basis::Kronecker(vs) => {
            let (vh, vw) = vs.as_ref();
            let x = vh.clone().transpose().expand([b, c, h, h]).matmul(x);
            x.matmul(vw.clone().expand([b, c, w, w]))
                .reshape([b as i64, -1])
        }
    }
}

impl Sampler for Ddrm {
    fn info(&self) -> &'static super::SamplerInfo {
        &INFO
    }

    fn detail(&self) -> Option<String> {
        let warm = self
            .params
            .warm
            .map(|w| format!("started at sigma {w} from the classical restoration"));
        let damage = self.damage.as_ref().and_then(Damage::detail);
        match (warm, damage) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        }
    }

    fn step(&mut self, problem: &Problem) -> Result<()> {
        if self.is_done() {
            return Ok(());
        }
        if let Some(s_row) = self.rows {
            return self.step_rows(problem, s_row);
        }
        let i = self.state.step;
        let (s, sn) = (self.sigmas[i], self.sigmas[i + 1]);
        let x = self.state.x.clone();
        let dims = x.dims();
        let d = problem.dim();
        let device = &problem.device;
        let (eta, eta_b, sy) = (self.params.eta, self.params.eta_b, problem.sigma_y);
        let any_low = self.s_smallest.is_some_and(|sv| sn < sy / sv);
        let x0 = match self.damage.as_mut() {
            Some(damage) => damage.denoise(problem, x.clone(), s, any_low, &self.ybar),
            None => problem.prior.denoise(x.clone(), s),
        };
        self.state.nfe += 1;
        let (xb, x0b) = (
            self.pixels_to_spectral(x),
            self.pixels_to_spectral(x0.clone()),
        );
        if let Some(s1) = self.s_uniform {
            let next = self.uniform_update(problem, xb, x0b, [s, sn], s1);
            self.state.x = self.spectral_to_pixels(next, problem.shape()).reshape(dims);
            self.state.x0_hat = if sn == 0.0 { self.state.x.clone() } else { x0 };
            self.state.sigma = sn;
            self.state.step += 1;
            return Ok(());
        }
        // Per-coordinate case masks and coefficients for this step, from s on the device (host
        // vectors of d values each were ~15 floats per value of a large photo's peak memory).
        let sv = self.s_dev.clone();
        let null_m = sv.clone().lower_equal_elem(1e-6).float();
        let measured = null_m.clone().neg().add_scalar(1.0);
        // σ' < σ_y / s  ⟺  s·σ' < σ_y for s > 0.
        let low_m = sv.clone().mul_scalar(sn).lower_elem(sy).float() * measured.clone();
        let high_m = measured - low_m.clone();
        let low_coef = sv.clone().mul_scalar((1.0 - eta * eta).sqrt() * sn / sy) * low_m.clone();
        let high_std = (sv.clamp_min(1e-6).square().recip())
            .mul_scalar(-(eta_b * sy).powi(2))
            .add_scalar(sn * sn)
            .clamp_min(0.0)
            .sqrt()
            * high_m.clone();
        // One chain at a time: each case's terms are whole-picture temporaries, and for a
        // large photo four chains' worth of them at once doubled the run's peak memory. The
        // noise is drawn chain after chain, the same numbers as one draw of [B, d].
        let rows: Vec<Tensor<2>> = (0..dims[0])
            .map(|j| {
                let xb = xb.clone().slice([j..j + 1, 0..d]);
                let x0b = x0b.clone().slice([j..j + 1, 0..d]);
                let noise = tensor::normal(&mut self.rng, [1, d, 1, 1], device).reshape([1, d]);
                let null = x0b.clone()
                    + (xb - x0b.clone()).mul_scalar((1.0 - eta * eta).sqrt() * sn / s)
                    + noise.clone().mul_scalar(eta * sn);
                let low = x0b.clone()
                    + (self.ybar.clone() - x0b.clone()) * low_coef.clone()
                    + noise.clone().mul_scalar(eta * sn);
                let high = x0b.mul_scalar(1.0 - eta_b)
                    + self.ybar.clone().mul_scalar(eta_b)
                    + noise * high_std.clone();
                null * null_m.clone() + low * low_m.clone() + high * high_m.clone()
            })
            .collect();
        drop((xb, x0b));
        let next = Tensor::cat(rows, 0);
        self.state.x = self.spectral_to_pixels(next, problem.shape()).reshape(dims);
        self.state.x0_hat = if sn == 0.0 { self.state.x.clone() } else { x0 };
        self.state.sigma = sn;
        self.state.step += 1;
        Ok(())
    }

    fn state(&self) -> &ChainState {
        &self.state
    }
}
