//! The exact Gaussian-mixture prior: its denoiser against a Monte-Carlo reference, the device
//! (burn) denoiser against the f64 closed form, the posterior mixture against an independent
//! precision-form computation, the anisotropic denoiser (EPS identity), and file validation.
#![allow(clippy::unwrap_used)]

mod common;

use posterior_lab::linalg::{Cholesky, Mat};
use posterior_lab::priors::{Denoiser, Gmm, GmmDenoiser};
use posterior_lab::samplers::{self, SamplerSpec};
use posterior_lab::tensor;

fn two_d_gmm() -> Gmm {
    let c0 = Mat::from_rows(2, 2, vec![0.5, 0.2, 0.2, 0.3]);
    let c1 = Mat::from_rows(2, 2, vec![0.2, -0.05, -0.05, 0.4]);
    Gmm::new(
        vec![0.4, 0.6],
        vec![vec![1.0, -0.5], vec![-1.2, 0.8]],
        vec![c0, c1],
    )
    .unwrap()
}

#[test]
fn denoiser_matches_monte_carlo_posterior_mean() {
    // E[x0 | x] = Σ_i x0_i N(x; x0_i, σ²) / Σ_i N(x; x0_i, σ²) over prior draws x0_i.
    let gmm = two_d_gmm();
    let mut rng = tensor::rng(11);
    let (draws, _) = gmm.sample(400_000, &mut rng);
    for (x, sigma) in [([0.3, 0.1], 0.7), ([-1.0, 1.0], 0.4), ([2.0, -2.0], 1.5)] {
        let logw: Vec<f64> = draws
            .iter()
            .map(|d| -((d[0] - x[0]).powi(2) + (d[1] - x[1]).powi(2)) / (2.0 * sigma * sigma))
            .collect();
        let w = posterior_lab::linalg::softmax(&logw);
        let mc: Vec<f64> = (0..2)
            .map(|k| draws.iter().zip(&w).map(|(d, wi)| d[k] * wi).sum())
            .collect();
        let ess = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
        let exact = gmm.denoise(&x, sigma);
        for k in 0..2 {
            assert!(
                (mc[k] - exact[k]).abs() < 6.0 / ess.sqrt(),
                "x={x:?} σ={sigma}: Monte Carlo {mc:?} vs exact {exact:?} (ESS {ess:.0})"
            );
        }
    }
}

#[test]
fn score_is_the_gradient_of_the_log_density() {
    let gmm = two_d_gmm();
    let x = [0.4, -0.2];
    for sigma in [0.05, 0.5, 3.0] {
        let s = gmm.score(&x, sigma);
        let h = 1e-5;
        for k in 0..2 {
            let mut xp = x;
            let mut xm = x;
            xp[k] += h;
            xm[k] -= h;
            let fd = (gmm.noised_log_density(&xp, sigma) - gmm.noised_log_density(&xm, sigma))
                / (2.0 * h);
            assert!(
                (fd - s[k]).abs() < 1e-4 * (1.0 + fd.abs()),
                "σ={sigma}: fd {fd} vs score {}",
                s[k]
            );
        }
    }
}

#[test]
fn device_denoiser_matches_f64_closed_form() {
    let device = common::cpu();
    for bed in [common::bimodal_bed(), common::mcg_bed(1)] {
        let den = GmmDenoiser::new(bed.gmm.clone(), bed.shape, &device).unwrap();
        let d = bed.gmm.dim();
        let mut rng = tensor::rng(5);
        for sigma in [0.002, 0.1, 1.0, 20.0, 80.0] {
            let x: Vec<f64> = tensor::gaussian_vec(&mut rng, 6 * d)
                .into_iter()
                .map(|v| v * (1.0 + sigma))
                .collect();
            let [c, h, w] = bed.shape;
            let got =
                tensor::to_f64(&den.denoise(tensor::from_f64(&x, [6, c, h, w], &device), sigma))
                    .unwrap();
            for b in 0..6 {
                let exact = bed.gmm.denoise(&x[b * d..(b + 1) * d], sigma);
                for k in 0..d {
                    let g = got[b * d + k];
                    assert!(
                        (g - exact[k]).abs() < 2e-4 * (1.0 + exact[k].abs()),
                        "{} σ={sigma}: device {g} vs f64 {}",
                        bed.name,
                        exact[k]
                    );
                }
            }
        }
    }
}

#[test]
fn posterior_of_a_gaussian_matches_the_precision_form() {
    // One component: P = C⁻¹ + AᵀA/σ², μ = P⁻¹(C⁻¹m + Aᵀy/σ²), computed independently.
    let c = Mat::from_rows(3, 3, vec![1.0, 0.3, 0.1, 0.3, 0.8, -0.2, 0.1, -0.2, 0.5]);
    let m = vec![0.5, -1.0, 2.0];
    let gmm = Gmm::new(vec![1.0], vec![m.clone()], vec![c.clone()]).unwrap();
    let a = Mat::from_rows(2, 3, vec![1.0, 0.5, 0.0, 0.0, -1.0, 2.0]);
    let y = vec![0.7, 1.1];
    let s = 0.2;
    let post = gmm.posterior(&a, &y, s).unwrap();
    let c_inv = Cholesky::new(&c, "C").unwrap().inverse();
    let p = c_inv.add(&a.transpose().matmul(&a).scale(1.0 / (s * s)));
    let p_ch = Cholesky::new(&p, "P").unwrap();
    let rhs: Vec<f64> = c_inv
        .matvec(&m)
        .iter()
        .zip(a.tmatvec(&y))
        .map(|(u, v)| u + v / (s * s))
        .collect();
    let mu = p_ch.solve(&rhs);
    let cov = p_ch.inverse();
    for i in 0..3 {
        assert!((post.mean(0)[i] - mu[i]).abs() < 1e-10);
    }
    assert!(post.cov(0).max_abs_diff(&cov) < 1e-10);
}

#[test]
fn exact_samples_have_the_closed_form_mean_and_covariance() {
    let bed = common::bimodal_bed();
    let (mean, cov) = bed.posterior.moments();
    let n = 40_000;
    // Through the `Exact` sampler, as the command line runs it (f32 chains on the device).
    let device = common::cpu();
    let problem = bed.problem(&device);
    let mut sampler = samplers::build(&SamplerSpec::Exact, &problem, n, 9).unwrap();
    samplers::run(sampler.as_mut(), &problem, |_| {}).unwrap();
    let samples = common::rows(&sampler.samples());
    let d = bed.gmm.dim();
    for i in 0..d {
        let sm: f64 = samples.iter().map(|s| s[i]).sum::<f64>() / n as f64;
        let tol = 5.0 * (cov.at(i, i) / n as f64).sqrt();
        assert!((sm - mean[i]).abs() < tol, "mean[{i}]: {sm} vs {}", mean[i]);
        for j in 0..d {
            let sc: f64 = samples
                .iter()
                .map(|s| (s[i] - mean[i]) * (s[j] - mean[j]))
                .sum::<f64>()
                / n as f64;
            let tol =
                6.0 * ((cov.at(i, i) * cov.at(j, j) + cov.at(i, j).powi(2)) / n as f64).sqrt();
            assert!(
                (sc - cov.at(i, j)).abs() < tol,
                "cov[{i},{j}]: {sc} vs {}",
                cov.at(i, j)
            );
        }
    }
    // Both modes keep substantial weight: this bed really is bimodal.
    let w = bed.posterior.weights();
    assert!(w.iter().all(|v| *v > 0.1), "posterior weights {w:?}");
}

#[test]
fn anisotropic_denoiser_gives_the_exact_posterior_denoiser() {
    // EPS identity: D_Σ⋆(μ⋆) = E[x0 | x_σ, y] with Σ⋆ = (I/σ² + AᵀA/σ_y²)⁻¹ and
    // μ⋆ = Σ⋆ (x_σ/σ² + Aᵀy/σ_y²); the right side from the exact posterior mixture.
    for bed in [common::bimodal_bed(), common::mcg_bed(2)] {
        let d = bed.gmm.dim();
        let mut rng = tensor::rng(13);
        for sigma in [0.05, 0.7, 5.0] {
            let x: Vec<f64> = tensor::gaussian_vec(&mut rng, d);
            let s2 = sigma * sigma;
            let sy2 = bed.sigma_y * bed.sigma_y;
            let prec = Mat::identity(d)
                .scale(1.0 / s2)
                .add(&bed.a.transpose().matmul(&bed.a).scale(1.0 / sy2));
            let ch = Cholesky::new(&prec, "precision").unwrap();
            let sigma_star = ch.inverse();
            let rhs: Vec<f64> = x
                .iter()
                .zip(bed.a.tmatvec(&bed.y))
                .map(|(u, v)| u / s2 + v / sy2)
                .collect();
            let mu_star = ch.solve(&rhs);
            let eps = bed.gmm.denoise_anisotropic(&mu_star, &sigma_star).unwrap();
            let exact = bed.posterior.denoise(&x, sigma);
            for k in 0..d {
                assert!(
                    (eps[k] - exact[k]).abs() < 1e-9 * (1.0 + exact[k].abs()),
                    "{} σ={sigma}: {eps:?} vs {exact:?}",
                    bed.name
                );
            }
        }
    }
}

#[test]
fn mixture_files_are_validated() {
    let bad = [
        (
            "(weights: [0.5, 0.4], means: [[0.0], [1.0]], variances: [[1.0], [1.0]])",
            "sum to",
        ),
        (
            "(weights: [1.0], means: [[0.0, 1.0]], covariances: [[[1.0, 2.0], [2.0, 1.0]]])",
            "positive definite",
        ),
        (
            "(weights: [1.0], means: [[0.0, 1.0]], covariances: [[[1.0, 0.5], [0.0, 1.0]]])",
            "symmetric",
        ),
        (
            "(weights: [1.0], means: [[0.0, 1.0]], variances: [[1.0]])",
            "1x1",
        ),
        (
            "(weights: [1.0], means: [[0.0]], variances: [[1.0]], extra: 1)",
            "extra",
        ),
        ("(weights: [1.0], means: [[0.0]])", "covariances"),
    ];
    let dir = std::env::temp_dir().join(format!("pl-gmm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (text, needle)) in bad.iter().enumerate() {
        let p = dir.join(format!("bad{i}.ron"));
        std::fs::write(&p, text).unwrap();
        let err = Gmm::from_file(&p, None).expect_err("must fail").to_string();
        assert!(
            err.contains(needle) && err.contains(&format!("bad{i}.ron")),
            "{text}: {err}"
        );
    }
    let p = dir.join("ok.ron");
    std::fs::write(
        &p,
        "(weights: [1.0], means: [[0.0, 1.0]], variances: [[1.0, 2.0]])",
    )
    .unwrap();
    assert!(Gmm::from_file(&p, Some(2)).is_ok());
    let err = Gmm::from_file(&p, Some(3)).err().unwrap().to_string();
    assert!(err.contains("dimension 2") && err.contains("= 3"), "{err}");
}
