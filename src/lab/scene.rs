//! What the 2-D lab is about: a Gaussian-mixture prior in the plane that the user edits by hand,
//! a linear measurement of it (one projection, both coordinates, or a recipe's matrix) and σ_y.
//! Everything the lab computes (densities, arrows, particles) starts from a [`LabScene`].

use super::fields::Scene;
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::operators::{MatrixOp, Operator};
use crate::priors::{Gmm, GmmDenoiser};
use crate::problem::Problem;
use crate::tensor;
use burn::tensor::Device;
use std::sync::Arc;

/// The most components the lab edits (the 25-mode grid fits).
pub const MAX_COMPONENTS: usize = 64;

/// One mixture component: a weight (normalised with the others), a mean and a covariance
/// [[xx, xy], [xy, yy]].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Component {
    pub weight: f64,
    pub mean: [f64; 2],
    pub cov: [f64; 3],
}

impl Component {
    pub fn isotropic(weight: f64, mean: [f64; 2], sd: f64) -> Self {
        Self {
            weight,
            mean,
            cov: [sd * sd, 0.0, sd * sd],
        }
    }

    /// The axes of its covariance ellipse: (half-length, unit direction) for the larger and the
    /// smaller eigenvalue, as standard deviations.
    pub fn axes(&self) -> [(f64, [f64; 2]); 2] {
        let [a, b, c] = self.cov;
        let mid = 0.5 * (a + c);
        let rad = (0.25 * (a - c).powi(2) + b * b).sqrt();
        let (l1, l2) = (mid + rad, (mid - rad).max(0.0));
        let angle = 0.5 * (2.0 * b).atan2(a - c);
        let (s, co) = angle.sin_cos();
        [(l1.sqrt(), [co, s]), (l2.sqrt(), [-s, co])]
    }

    /// The covariance scaled by `factor` (a spread change keeps the shape).
    pub fn scaled(mut self, factor: f64) -> Self {
        self.cov.iter_mut().for_each(|v| *v *= factor);
        self
    }
}

/// How the plane is observed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Measure {
    /// One projection y = a·x with a = (cos θ, sin θ): θ = 0 observes x₁, θ = 90° observes x₂.
    Line { angle: f64, offset: f64 },
    /// Both coordinates (denoising): y is a point.
    Point { y: [f64; 2] },
    /// Any rows (from a recipe's operator): A as rows and y.
    Matrix { rows: Vec<[f64; 2]>, y: Vec<f64> },
}

impl Measure {
    /// A and y.
    pub fn matrix(&self) -> (Mat, Vec<f64>) {
        match self {
            Measure::Line { angle, offset } => (
                Mat::from_rows(1, 2, vec![angle.cos(), angle.sin()]),
                vec![*offset],
            ),
            Measure::Point { y } => (Mat::identity(2), y.to_vec()),
            Measure::Matrix { rows, y } => (
                Mat::from_rows(rows.len(), 2, rows.iter().flatten().copied().collect()),
                y.clone(),
            ),
        }
    }
}

/// A prior, a measurement and its noise level.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabScene {
    pub components: Vec<Component>,
    pub measure: Measure,
    pub sigma_y: f64,
}

impl LabScene {
    /// The prior as a checked mixture (weights normalised; one message naming the component
    /// that is wrong).
    pub fn prior(&self) -> Result<Gmm> {
        let n = self.components.len();
        if n == 0 || n > MAX_COMPONENTS {
            return Err(Error::invalid(
                "2-D prior",
                format!("needs 1 to {MAX_COMPONENTS} components, has {n}"),
            ));
        }
        for (k, c) in self.components.iter().enumerate() {
            let [a, b, d] = c.cov;
            let finite = c.mean.iter().chain(&c.cov).all(|v| v.is_finite());
            if !(finite && c.weight > 0.0 && c.weight.is_finite()) {
                return Err(Error::invalid(
                    "2-D prior",
                    format!("component {k} needs a positive weight and a finite mean and spread"),
                ));
            }
            if !(a > 1e-8 && d > 1e-8 && a * d - b * b > 1e-16) {
                return Err(Error::invalid(
                    "2-D prior",
                    format!("component {k}'s covariance is not positive definite"),
                ));
            }
        }
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        Gmm::new(
            self.components.iter().map(|c| c.weight / total).collect(),
            self.components.iter().map(|c| c.mean.to_vec()).collect(),
            self.components
                .iter()
                .map(|c| Mat::from_rows(2, 2, vec![c.cov[0], c.cov[1], c.cov[1], c.cov[2]]))
                .collect(),
        )
    }

    /// The closed-form scene: prior, measurement and exact posterior (a degenerate projection
    /// or σ_y ≤ 0 is refused here, with one message).
    pub fn scene(&self) -> Result<Scene> {
        let (a, y) = self.measure.matrix();
        Scene::new(self.prior()?, a, y, self.sigma_y)
    }

    /// The same scene as an inverse problem the samplers run on: the mixture's exact denoiser
    /// on a 1×1×2 "image" and the measurement as a matrix operator.
    pub fn problem(&self, device: &Device) -> Result<Problem> {
        let scene = self.scene()?;
        let shape = [1, 1, 2];
        let prior = Arc::new(GmmDenoiser::new(scene.prior.clone(), shape, device)?);
        let data: Vec<f32> = scene.a.data.iter().map(|v| *v as f32).collect();
        let op: Arc<dyn Operator> = Arc::new(MatrixOp::from_array(
            shape,
            &[scene.a.rows, 2],
            data,
            device,
        )?);
        let y = tensor::from_f64(&scene.y, [1, scene.a.rows, 1, 1], device);
        Problem::new(prior, op, y, self.sigma_y, device.clone())
    }

    /// The scene a loaded recipe describes, when its prior is a 2-D Gaussian mixture: the
    /// mixture, the operator as rows (A applied to the two unit vectors) and the recipe's y.
    pub fn from_problem(problem: &Problem) -> Result<Self> {
        if !problem.is_linear_gaussian() {
            return Err(Error::invalid(
                "2-D lab",
                format!(
                    "shows linear measurements with Gaussian noise, not {}: run the recipe \
                     (Exact draws from its grid posterior)",
                    problem.measurement_label()
                ),
            ));
        }
        let gmm = problem
            .prior
            .gmm()
            .filter(|g| g.dim() == 2)
            .ok_or_else(|| Error::invalid("2-D lab", "the prior is not a 2-D Gaussian mixture"))?;
        let eye = tensor::from_f64(&[1.0, 0.0, 0.0, 1.0], [2, 1, 1, 2], &problem.device);
        let cols = tensor::to_f64(&problem.operator.forward(eye))?;
        let m = cols.len() / 2;
        let y_all = problem.y_f64()?;
        // Rows that see nothing (a mask's hidden coordinate) are dropped with their y.
        let (rows, y): (Vec<[f64; 2]>, Vec<f64>) = (0..m)
            .map(|r| ([cols[r], cols[m + r]], y_all[r]))
            .filter(|(a, _)| a[0] != 0.0 || a[1] != 0.0)
            .unzip();
        if rows.is_empty() {
            return Err(Error::invalid("2-D lab", "the operator observes nothing"));
        }
        let components = (0..gmm.len())
            .map(|k| {
                let c = gmm.cov(k);
                Component {
                    weight: gmm.weights()[k],
                    mean: [gmm.mean(k)[0], gmm.mean(k)[1]],
                    cov: [c.at(0, 0), c.at(0, 1), c.at(1, 1)],
                }
            })
            .collect();
        let scene = Self {
            components,
            measure: Measure::Matrix { rows, y },
            sigma_y: problem.sigma_y,
        };
        scene.scene()?;
        Ok(scene)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_axes_are_the_covariance_eigenvectors() {
        let c = Component {
            weight: 1.0,
            mean: [0.0, 0.0],
            cov: [0.5, 0.2, 0.3],
        };
        for (len, dir) in c.axes() {
            // C v = λ v with λ = len².
            let cv = [0.5 * dir[0] + 0.2 * dir[1], 0.2 * dir[0] + 0.3 * dir[1]];
            assert!((cv[0] - len * len * dir[0]).abs() < 1e-12);
            assert!((cv[1] - len * len * dir[1]).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_components_are_named() {
        let mut s = LabScene {
            components: vec![Component::isotropic(1.0, [0.0, 0.0], 0.3)],
            measure: Measure::Line {
                angle: 0.0,
                offset: 0.2,
            },
            sigma_y: 0.2,
        };
        assert!(s.scene().is_ok());
        s.components.push(Component {
            weight: 1.0,
            mean: [1.0, 0.0],
            cov: [0.1, 0.2, 0.1],
        });
        let e = s.prior().unwrap_err().to_string();
        assert!(
            e.contains("component 1") && e.contains("positive definite"),
            "{e}"
        );
        s.components[1].cov = [0.1, 0.0, 0.1];
        s.components[1].weight = 0.0;
        assert!(s.prior().unwrap_err().to_string().contains("component 1"));
        s.components.pop();
        s.measure = Measure::Matrix {
            rows: vec![[0.0, 0.0]],
            y: vec![0.1],
        };
        assert!(s.scene().unwrap_err().to_string().contains("projection"));
    }
}
