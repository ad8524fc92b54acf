//! Closed-form vector fields of guided diffusion on a Gaussian-mixture prior, in f64: the arrows
//! the 2-D lab draws, and what they are checked against. A [`Scene`] is
//! a prior, a linear measurement y = A x + σ_y n and its exact posterior; [`Scene::field`]
//! evaluates, at a point x and noise level σ, the prior score, the exact noised-posterior score,
//! the exact guidance ∇ log p_σ(y | x) (their difference) and the approximations samplers use in
//! its place (DPS: ∇ log N(y; A x̂0(x), σ_y²); ΠGDM: ∇ log N(y; A x̂0(x), σ_y² + r²AAᵀ)), so the
//! error of each approximation is the gap between two arrows. Any dimension works.

use crate::error::{Error, Result};
use crate::linalg::{Cholesky, Mat};
use crate::priors::Gmm;

/// Which arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// ∇ log p_σ(x).
    PriorScore,
    /// ∇ log p_σ(x | y): what an exact posterior sampler (EPS with the exact denoiser) follows.
    PosteriorScore,
    /// ∇ log p_σ(y | x) = posterior score − prior score: the guidance term, exactly.
    ExactGuidance,
    /// DPS's guidance ∇ₓ log N(y; A x̂0(x), σ_y² I) (before its ζ/‖y − A x̂0‖ step scaling).
    DpsGuidance,
    /// ΠGDM's guidance ∇ₓ log N(y; A x̂0(x), σ_y² I + r² A Aᵀ), r² = σ²/(1 + σ²).
    PigdmGuidance,
    /// Annealed Langevin's likelihood term ∇ₓ log N(y; A x, (σ_y² + σ²) I): the measurement
    /// applied to the noisy x itself, its variance widened by σ².
    AldGuidance,
    /// ALMC's likelihood term, in the lab's (variance-exploding) coordinates: its path targets
    /// p_t(u)·exp(−‖y − A u‖²/(2σ_y²)) in the OU state u = x/√(1 + σ²), so the arrow is
    /// ∇ₓ of −‖y − A x/√(1 + σ²)‖²/(2σ_y²): the whole likelihood, unannealed, at every σ.
    AlmcGuidance,
}

impl Field {
    /// Every arrow, in the order the lab lists them.
    pub const ALL: [Field; 7] = [
        Field::PriorScore,
        Field::PosteriorScore,
        Field::ExactGuidance,
        Field::DpsGuidance,
        Field::PigdmGuidance,
        Field::AldGuidance,
        Field::AlmcGuidance,
    ];

    /// A short label for legends.
    pub fn label(self) -> &'static str {
        match self {
            Field::PriorScore => "prior score",
            Field::PosteriorScore => "exact posterior score",
            Field::ExactGuidance => "exact guidance",
            Field::DpsGuidance => "DPS guidance",
            Field::PigdmGuidance => "PiGDM guidance",
            Field::AldGuidance => "ALD likelihood term",
            Field::AlmcGuidance => "ALMC likelihood term",
        }
    }
}

/// A prior, a measurement and its exact posterior.
#[derive(Debug, Clone)]
pub struct Scene {
    pub prior: Gmm,
    pub a: Mat,
    pub y: Vec<f64>,
    pub sigma_y: f64,
    posterior: Gmm,
}

impl Scene {
    /// Checks the measurement (shapes, σ_y > 0, no all-zero projection row) and computes the
    /// exact posterior.
    pub fn new(prior: Gmm, a: Mat, y: Vec<f64>, sigma_y: f64) -> Result<Self> {
        if a.cols != prior.dim() || a.rows != y.len() || a.rows == 0 {
            return Err(Error::shape(
                "measurement",
                format!("A with {} columns and y of its rows", prior.dim()),
                format!("A {}x{}, y of {}", a.rows, a.cols, y.len()),
            ));
        }
        if !(sigma_y > 0.0 && sigma_y.is_finite()) {
            return Err(Error::invalid(
                "noise σ_y",
                format!("{sigma_y} must be positive and finite"),
            ));
        }
        for r in 0..a.rows {
            let norm = a.row(r).iter().map(|v| v * v).sum::<f64>().sqrt();
            if !(norm > 1e-12 && norm.is_finite()) {
                return Err(Error::invalid(
                    "projection",
                    format!(
                        "row {r} of A has length {norm:e}: a projection needs a nonzero, finite \
                         direction"
                    ),
                ));
            }
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("y", "must be finite"));
        }
        let posterior = prior.posterior(&a, &y, sigma_y)?;
        Ok(Self {
            prior,
            a,
            y,
            sigma_y,
            posterior,
        })
    }

    /// The exact posterior p(x | y), a Gaussian mixture.
    pub fn posterior(&self) -> &Gmm {
        &self.posterior
    }

    /// The arrow `kind` at `x` for noise level `sigma` (> 0).
    pub fn field(&self, kind: Field, x: &[f64], sigma: f64) -> Result<Vec<f64>> {
        Ok(match kind {
            Field::PriorScore => self.prior.score(x, sigma),
            Field::PosteriorScore => self.posterior.score(x, sigma),
            Field::ExactGuidance => {
                let post = self.posterior.score(x, sigma);
                let prior = self.prior.score(x, sigma);
                post.iter().zip(&prior).map(|(a, b)| a - b).collect()
            }
            Field::DpsGuidance => {
                let s2y = self.sigma_y * self.sigma_y;
                self.guidance(x, sigma, &Mat::identity(self.a.rows).scale(s2y))?
            }
            Field::PigdmGuidance => {
                let r2 = sigma * sigma / (1.0 + sigma * sigma);
                let s2y = self.sigma_y * self.sigma_y;
                let cov = self.a.matmul(&self.a.transpose()).scale(r2).add_diag(s2y);
                self.guidance(x, sigma, &cov)?
            }
            Field::AldGuidance => self.likelihood_at(x, 1.0, self.sigma_y.powi(2) + sigma * sigma),
            Field::AlmcGuidance => {
                let s = 1.0 / (1.0 + sigma * sigma).sqrt();
                self.likelihood_at(x, s, self.sigma_y.powi(2))
            }
        })
    }

    /// ∇ₓ log N(y; A(s x), v I) = s Aᵀ(y − A s x)/v.
    fn likelihood_at(&self, x: &[f64], s: f64, v: f64) -> Vec<f64> {
        let xs: Vec<f64> = x.iter().map(|xi| xi * s).collect();
        let r: Vec<f64> = self
            .y
            .iter()
            .zip(self.a.matvec(&xs))
            .map(|(y, ax)| (y - ax) * s / v)
            .collect();
        self.a.tmatvec(&r)
    }

    /// Jᵀ Aᵀ cov⁻¹ (y − A x̂0(x)) with J = ∂x̂0/∂x = I + σ² ∇² log p_σ (symmetric), by central
    /// differences of the exact denoiser (f64, step scaled to σ).
    fn guidance(&self, x: &[f64], sigma: f64, cov: &Mat) -> Result<Vec<f64>> {
        let d = x.len();
        let x0 = self.prior.denoise(x, sigma);
        let resid: Vec<f64> = self
            .y
            .iter()
            .zip(self.a.matvec(&x0))
            .map(|(y, ax)| y - ax)
            .collect();
        let v = Cholesky::new(cov, "guidance covariance")?.solve(&resid);
        let at_v = self.a.tmatvec(&v);
        let h = 1e-5 * (1.0 + sigma);
        let mut out = vec![0.0; d];
        for j in 0..d {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[j] += h;
            down[j] -= h;
            let (fu, fd) = (
                self.prior.denoise(&up, sigma),
                self.prior.denoise(&down, sigma),
            );
            // (Jᵀ w)_j = Σ_i ∂x̂0_i/∂x_j · w_i.
            out[j] = (0..d).map(|i| (fu[i] - fd[i]) / (2.0 * h) * at_v[i]).sum();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Gaussian N(m, C) in 2-D, observed through one projection.
    fn gaussian_scene(c: Mat) -> Scene {
        let prior = Gmm::new(vec![1.0], vec![vec![0.3, -0.2]], vec![c]).unwrap();
        let a = Mat::from_rows(1, 2, vec![0.8, 0.6]);
        Scene::new(prior, a, vec![0.5], 0.3).unwrap()
    }

    /// x̂0 and J for a Gaussian prior: m + C(C + σ²I)⁻¹(x − m), J = C(C + σ²I)⁻¹.
    fn gaussian_jacobian(c: &Mat, sigma: f64) -> Mat {
        let inv = Cholesky::new(&c.add_diag(sigma * sigma), "t")
            .unwrap()
            .inverse();
        c.matmul(&inv)
    }

    #[test]
    fn exact_guidance_matches_the_gaussian_closed_form() {
        let c = Mat::from_rows(2, 2, vec![0.5, 0.2, 0.2, 0.3]);
        let scene = gaussian_scene(c.clone());
        for sigma in [0.05, 0.4, 2.0] {
            let j = gaussian_jacobian(&c, sigma);
            // x0 | x_σ ~ N(x̂0, Σ⋆), Σ⋆ = (C⁻¹ + I/σ²)⁻¹; y | x_σ ~ N(A x̂0, AΣ⋆Aᵀ + σ_y²).
            let prec = Cholesky::new(&c, "c")
                .unwrap()
                .inverse()
                .add_diag(1.0 / (sigma * sigma));
            let post_cov = Cholesky::new(&prec, "p").unwrap().inverse();
            let a = &scene.a;
            let g = a.matmul(&post_cov).matmul(&a.transpose()).add_diag(0.09);
            for x in [[0.0, 0.0], [1.0, -0.5], [-0.7, 0.9]] {
                let x0 = scene.prior.denoise(&x, sigma);
                let r = scene.y[0] - a.matvec(&x0)[0];
                let w = a.tmatvec(&[r / g.at(0, 0)]);
                let want = j.transpose().matvec(&w);
                let got = scene.field(Field::ExactGuidance, &x, sigma).unwrap();
                for k in 0..2 {
                    assert!(
                        (got[k] - want[k]).abs() < 1e-8 * (1.0 + want[k].abs()),
                        "σ {sigma}: {got:?} vs {want:?}"
                    );
                }
                // DPS drops AΣ⋆Aᵀ: the same direction, a larger magnitude.
                let dps = scene.field(Field::DpsGuidance, &x, sigma).unwrap();
                let want_dps = j.transpose().matvec(&a.tmatvec(&[r / 0.09]));
                for k in 0..2 {
                    assert!((dps[k] - want_dps[k]).abs() < 1e-6 * (1.0 + want_dps[k].abs()));
                }
            }
        }
    }

    #[test]
    fn pigdm_is_exact_for_a_unit_covariance_prior() {
        // With C = I, Σ⋆ = σ²/(1 + σ²) I = r² I: ΠGDM's Gaussian is the exact one.
        let scene = gaussian_scene(Mat::identity(2));
        for sigma in [0.1, 1.0, 5.0] {
            for x in [[0.2, 0.1], [-1.5, 2.0]] {
                let exact = scene.field(Field::ExactGuidance, &x, sigma).unwrap();
                let pigdm = scene.field(Field::PigdmGuidance, &x, sigma).unwrap();
                for k in 0..2 {
                    assert!((exact[k] - pigdm[k]).abs() < 1e-6 * (1.0 + exact[k].abs()));
                }
            }
        }
    }

    #[test]
    fn posterior_score_is_prior_score_plus_guidance_on_a_mixture() {
        let c0 = Mat::from_rows(2, 2, vec![0.2, 0.05, 0.05, 0.1]);
        let prior = Gmm::new(
            vec![0.4, 0.6],
            vec![vec![1.0, 1.0], vec![-1.0, -0.5]],
            vec![c0, Mat::identity(2).scale(0.15)],
        )
        .unwrap();
        let scene =
            Scene::new(prior, Mat::from_rows(1, 2, vec![1.0, 0.0]), vec![0.2], 0.5).unwrap();
        let x = [0.3, -0.1];
        let sigma = 0.7;
        let post = scene.field(Field::PosteriorScore, &x, sigma).unwrap();
        // Against finite differences of log p_σ(x | y) = log Σ w'_k N(x; μ'_k, S_k + σ²I).
        let h = 1e-6;
        for k in 0..2 {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[k] += h;
            down[k] -= h;
            let fd = (scene.posterior().noised_log_density(&up, sigma)
                - scene.posterior().noised_log_density(&down, sigma))
                / (2.0 * h);
            assert!((post[k] - fd).abs() < 1e-6, "{k}: {} vs {fd}", post[k]);
        }
    }

    #[test]
    fn langevin_likelihood_terms_match_their_formulas() {
        let scene = gaussian_scene(Mat::identity(2));
        let (x, sigma) = ([0.4, -1.0], 0.8);
        let r = 0.5 - (0.8 * 0.4 - 0.6);
        let ald = scene.field(Field::AldGuidance, &x, sigma).unwrap();
        let v = 0.09 + 0.64;
        assert!((ald[0] - 0.8 * r / v).abs() < 1e-12 && (ald[1] - 0.6 * r / v).abs() < 1e-12);
        // ALMC: d/dx of −(y − a·x s)²/(2σ_y²) = s a (y − s a·x)/σ_y², checked by differences.
        let almc = scene.field(Field::AlmcGuidance, &x, sigma).unwrap();
        let s = 1.0 / (1.0f64 + 0.64).sqrt();
        let f = |x: [f64; 2]| -(0.5 - s * (0.8 * x[0] + 0.6 * x[1])).powi(2) / (2.0 * 0.09);
        let h = 1e-6;
        let fd0 = (f([x[0] + h, x[1]]) - f([x[0] - h, x[1]])) / (2.0 * h);
        let fd1 = (f([x[0], x[1] + h]) - f([x[0], x[1] - h])) / (2.0 * h);
        assert!((almc[0] - fd0).abs() < 1e-6 && (almc[1] - fd1).abs() < 1e-6);
    }

    #[test]
    fn degenerate_measurements_are_refused_with_a_message() {
        let prior = Gmm::new(vec![1.0], vec![vec![0.0, 0.0]], vec![Mat::identity(2)]).unwrap();
        let e = Scene::new(
            prior.clone(),
            Mat::from_rows(1, 2, vec![0.0, 0.0]),
            vec![0.1],
            0.1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("projection"), "{e}");
        assert!(Scene::new(prior.clone(), Mat::identity(2), vec![0.1], 0.1).is_err());
        assert!(Scene::new(prior, Mat::identity(2), vec![0.1, 0.2], 0.0).is_err());
    }
}
