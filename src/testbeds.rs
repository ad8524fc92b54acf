//! Exact Gaussian-mixture test beds (prior, linear operator, y, σ_y and the exact posterior)
//! and the calibration of sample-set distances against exact sampling. Used by the test suite
//! and by `posterior-lab bench --table`.

use crate::linalg::Mat;
use crate::metrics;
use crate::operators::{MatrixOp, Operator};
use crate::priors::{Gmm, GmmDenoiser};
use crate::problem::Problem;
use crate::tensor::{self, Rng};
use burn::tensor::Device;
use std::sync::Arc;

/// An exact test bed: a mixture prior, a linear operator, y, σ_y and the exact posterior.
pub struct Bed {
    pub name: &'static str,
    pub gmm: Gmm,
    pub shape: [usize; 3],
    pub a: Mat,
    pub y: Vec<f64>,
    pub sigma_y: f64,
    pub posterior: Gmm,
}

impl Bed {
    pub fn problem(&self, device: &Device) -> Problem {
        let prior = Arc::new(
            GmmDenoiser::new(self.gmm.clone(), self.shape, device)
                .expect("test-bed parameters are valid by construction"),
        );
        let data: Vec<f32> = self.a.data.iter().map(|v| *v as f32).collect();
        let op: Arc<dyn Operator> = Arc::new(
            MatrixOp::from_array(self.shape, &[self.a.rows, self.a.cols], data, device)
                .expect("test-bed parameters are valid by construction"),
        );
        let y = tensor::from_f64(&self.y, [1, self.a.rows, 1, 1], device);
        Problem::new(prior, op, y, self.sigma_y, device.clone())
            .expect("test-bed parameters are valid by construction")
    }
}

/// Bimodal bed in d = 4: two well-separated correlated components, one noisy linear view that
/// cannot tell them apart well, so the posterior keeps both modes with substantial weight.
pub fn bimodal_bed() -> Bed {
    let shape = [1, 2, 2];
    let c0 = Mat::from_rows(
        4,
        4,
        vec![
            0.30, 0.10, 0.00, 0.05, //
            0.10, 0.25, 0.05, 0.00, //
            0.00, 0.05, 0.20, 0.02, //
            0.05, 0.00, 0.02, 0.35,
        ],
    );
    let c1 = Mat::from_diag(&[0.2, 0.3, 0.25, 0.15]);
    let gmm = Gmm::new(
        vec![0.35, 0.65],
        vec![vec![1.5, 1.5, -1.0, 1.0], vec![-1.5, -1.0, 1.0, -1.5]],
        vec![c0, c1],
    )
    .expect("test-bed parameters are valid by construction");
    // Observe x1 − x2 + 0.3 x3 and x0 + x3: both modes explain y comparably.
    let a = Mat::from_rows(2, 4, vec![0.0, 1.0, -1.0, 0.3, 1.0, 0.0, 0.0, 1.0]);
    let y = vec![-0.3, 0.2];
    let sigma_y = 0.4;
    let posterior = gmm
        .posterior(&a, &y, sigma_y)
        .expect("test-bed parameters are valid by construction");
    Bed {
        name: "bimodal d=4, A 2x4",
        gmm,
        shape,
        a,
        y,
        sigma_y,
        posterior,
    }
}

/// The MCGdiff benchmark in d = 8: 25 unit-covariance components on a grid of means
/// (−8i, −8j) repeated, random weights, A 1×8 with a random spectrum.
pub fn mcg_bed(seed: u64) -> Bed {
    let d = 8;
    let shape = [2, 2, 2];
    let mut rng = tensor::rng(seed);
    let mut means = vec![];
    let mut raw = vec![];
    for i in -2i32..=2 {
        for j in -2i32..=2 {
            means.push((0..d).map(|k| if k % 2 == 0 { -8.0 * i as f64 } else { -8.0 * j as f64 } / 4.0).collect());
            raw.push(tensor::gaussian(&mut rng).powi(2) + 0.05);
        }
    }
    let total: f64 = raw.iter().sum();
    let covs = vec![Mat::identity(d).scale(0.25); 25];
    let gmm = Gmm::new(raw.iter().map(|w| w / total).collect(), means, covs)
        .expect("test-bed parameters are valid by construction");
    let row: Vec<f64> = tensor::gaussian_vec(&mut rng, d);
    let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
    let a = Mat::from_rows(1, d, row.iter().map(|v| v / norm * 0.8).collect());
    let (truth, _) = gmm.sample(1, &mut rng);
    let sigma_y = 0.3;
    let y = vec![a.matvec(&truth[0])[0] + sigma_y * tensor::gaussian(&mut rng)];
    let posterior = gmm
        .posterior(&a, &y, sigma_y)
        .expect("test-bed parameters are valid by construction");
    Bed {
        name: "MCGdiff-style d=8, 25 modes, A 1x8",
        gmm,
        shape,
        a,
        y,
        sigma_y,
        posterior,
    }
}

/// The spread of a statistic between exact sample sets of size `n`: `reps` independent
/// draws of stat(exact set, exact reference set).
pub struct Floor {
    pub values: Vec<f64>,
}

impl Floor {
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }
    pub fn std(&self) -> f64 {
        let m = self.mean();
        (self.values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (self.values.len() - 1) as f64)
            .sqrt()
    }
    pub fn max(&self) -> f64 {
        self.values.iter().cloned().fold(f64::MIN, f64::max)
    }
    /// The acceptance threshold for "indistinguishable from exact": the largest value seen
    /// between exact sets, or mean + 3 sd, whichever is larger (the bimodal spread is skewed).
    pub fn threshold(&self) -> f64 {
        self.max().max(self.mean() + 3.0 * self.std())
    }
}

pub fn sw(a: &[Vec<f64>], b: &[Vec<f64>], seed: u64) -> f64 {
    metrics::sliced_wasserstein(a, b, 100, &mut tensor::rng(seed))
}

/// Calibrates SW and mode-weight error between exact sets of size n from `target`.
pub fn calibrate(
    target: &Gmm,
    reference: &[Vec<f64>],
    n: usize,
    reps: usize,
    rng: &mut Rng,
) -> (Floor, Floor) {
    let mut sws = vec![];
    let mut modes = vec![];
    for r in 0..reps {
        let (s, _) = target.sample(n, rng);
        sws.push(sw(&s, reference, 1000 + r as u64));
        modes.push(metrics::mode_weight_error(target, &s));
    }
    (Floor { values: sws }, Floor { values: modes })
}
