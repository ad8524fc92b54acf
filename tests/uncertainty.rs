//! Posterior principal components and calibration against closed forms: PCA of exact samples of
//! a Gaussian posterior recovers its covariance's eigen-structure, exact samples are calibrated
//! (coverage within binomial error at every level: the check of the quantile convention), and
//! the CRPS and quantiles of Gaussian draws match their closed forms.
#![allow(clippy::unwrap_used)]

mod common;

use posterior_lab::linalg::{Mat, sym_eigen_desc};
use posterior_lab::priors::Gmm;
use posterior_lab::samplers::{self, SamplerSpec};
use posterior_lab::tensor;
use posterior_lab::testbeds::Bed;
use posterior_lab::uncertainty::{self, LEVELS};

/// One Gaussian component in d = 8 (so the posterior is Gaussian with a known covariance),
/// observed through a 3×8 matrix, with well-separated posterior eigenvalues.
fn gaussian_bed() -> Bed {
    let d = 8;
    let mut rng = tensor::rng(11);
    // A random rotation (Gram–Schmidt of Gaussian vectors) of a spread-out spectrum.
    let mut q: Vec<Vec<f64>> = vec![];
    while q.len() < d {
        let mut v = tensor::gaussian_vec(&mut rng, d);
        for u in &q {
            let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        q.push(v.iter().map(|a| a / n).collect());
    }
    let spectrum = [4.0, 2.0, 1.0, 0.5, 0.25, 0.12, 0.06, 0.03];
    let mut cov = Mat::zeros(d, d);
    for (k, lam) in spectrum.iter().enumerate() {
        for i in 0..d {
            for j in 0..d {
                cov.set(i, j, cov.at(i, j) + lam * q[k][i] * q[k][j]);
            }
        }
    }
    let gmm = Gmm::new(vec![1.0], vec![vec![0.2; d]], vec![cov]).unwrap();
    let a = Mat::from_rows(3, d, tensor::gaussian_vec(&mut rng, 3 * d)).scale(0.15);
    let y = vec![0.4, -0.2, 0.1];
    let sigma_y = 0.5;
    let posterior = gmm.posterior(&a, &y, sigma_y).unwrap();
    Bed {
        name: "Gaussian d=8, A 3x8",
        gmm,
        shape: [2, 2, 2],
        a,
        y,
        sigma_y,
        posterior,
    }
}

#[test]
fn principal_components_of_exact_samples_are_the_posterior_covariance_eigenvectors() {
    let bed = gaussian_bed();
    let (lambda, u) = sym_eigen_desc(bed.posterior.cov(0));
    // The bed's posterior spectrum is spread enough for the comparison to mean something.
    for w in lambda.windows(2).take(4) {
        assert!(
            w[1] < 0.75 * w[0],
            "posterior eigenvalues too close: {lambda:?}"
        );
    }
    let n = 4000;
    let device = common::cpu();
    let problem = bed.problem(&device);
    let mut sampler = samplers::build(&SamplerSpec::Exact, &problem, n, 5).unwrap();
    samplers::run(sampler.as_mut(), &problem, |_| {}).unwrap();
    let samples = tensor::to_vec(&sampler.samples()).unwrap();
    let k = 4;
    let pca = uncertainty::pca(&samples, n, k).unwrap();
    let trace: f64 = lambda.iter().sum();
    let explained = pca.explained();
    let d = 8;
    for i in 0..k {
        // A sample eigenvalue of n Gaussian draws has relative standard error about √(2/n).
        let rel = (pca.variances[i] - lambda[i]).abs() / lambda[i];
        assert!(
            rel < 5.0 * (2.0 / n as f64).sqrt(),
            "λ{i}: {} vs {}",
            pca.variances[i],
            lambda[i]
        );
        assert!(
            (explained[i] - lambda[i] / trace).abs() < 0.02,
            "fraction {i}: {} vs {}",
            explained[i],
            lambda[i] / trace
        );
        // Eigenvector error: Σⱼ λᵢλⱼ / (n (λᵢ − λⱼ)²) in squared angle; allow 5× that.
        let angle2: f64 = (0..d)
            .filter(|&j| j != i)
            .map(|j| lambda[i] * lambda[j] / (n as f64 * (lambda[i] - lambda[j]).powi(2)))
            .sum();
        let dot: f64 = (0..d)
            .map(|r| f64::from(pca.component(i)[r]) * u.at(r, i))
            .sum();
        assert!(
            1.0 - dot.abs() < 5.0 * angle2 / 2.0 + 1e-4,
            "direction {i}: |cos| {} (allowed 1 − {})",
            dot.abs(),
            5.0 * angle2 / 2.0
        );
    }
    // Orthonormal directions, and the chains' coordinates reproduce their variances.
    for i in 0..k {
        for j in 0..k {
            let dot: f64 = pca
                .component(i)
                .iter()
                .zip(pca.component(j))
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            assert!(
                (dot - f64::from(u8::from(i == j))).abs() < 1e-4,
                "⟨v{i}, v{j}⟩ = {dot}"
            );
        }
        let s2: f64 = (0..n).map(|c| pca.scores[c * k + i].powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!((s2 - pca.variances[i]).abs() < 1e-3 * pca.variances[i]);
    }
}

/// Truths drawn from the prior, y simulated from each, exact posterior samples: the central
/// intervals cover the truth at their nominal level. 39 chains make every level's type-6
/// interval exact ((n + 1)(1 − L)/2 whole); numpy's type-7 convention would cover 0.90 at 95%
/// here, 14 standard errors off.
#[test]
fn exact_samples_are_calibrated_at_every_level() {
    let bed = common::bimodal_bed();
    let chains = 39;
    let truths = 4000;
    let mut rng = tensor::rng(3);
    let d = bed.gmm.dim();
    let mut covered = [0.0f64; LEVELS.len()];
    let mut z2 = 0.0;
    let mut crps_mean = 0.0;
    for _ in 0..truths {
        let (truth, _) = bed.gmm.sample(1, &mut rng);
        let y: Vec<f64> = bed
            .a
            .matvec(&truth[0])
            .iter()
            .map(|v| v + bed.sigma_y * tensor::gaussian(&mut rng))
            .collect();
        let post = bed.gmm.posterior(&bed.a, &y, bed.sigma_y).unwrap();
        let (draws, _) = post.sample(chains, &mut rng);
        let samples: Vec<f32> = draws.iter().flatten().map(|v| *v as f32).collect();
        let t: Vec<f32> = truth[0].iter().map(|v| *v as f32).collect();
        let stats = uncertainty::pixel_stats(&samples, chains, Some(&t), None).unwrap();
        let cal = stats.calibration.unwrap();
        for (l, (level, f)) in cal.all.coverage.iter().enumerate() {
            assert_eq!(*level, LEVELS[l]);
            covered[l] += f;
        }
        z2 += cal.all.z2.unwrap();
        crps_mean += cal.all.crps;
        assert_eq!(cal.crps_map.len(), d);
    }
    for (l, level) in LEVELS.iter().enumerate() {
        let observed = covered[l] / truths as f64;
        // Pixels of one truth are dependent: count truths only (conservative).
        let se = (level * (1.0 - level) / truths as f64).sqrt();
        eprintln!("level {level}: observed {observed:.4} (± {se:.4})");
        assert!(
            (observed - level).abs() < 4.0 * se,
            "coverage at {level}: {observed:.4}, outside 4 standard errors ({se:.4})"
        );
    }
    let z2 = z2 / truths as f64;
    eprintln!("z² {z2:.3}, CRPS {:.4}", crps_mean / truths as f64);
    assert!((0.95..1.2).contains(&z2), "z² of exact samples {z2}");
}

/// Standard normal CDF through erf (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
fn phi_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-x * x).exp();
    0.5 * (1.0 + z.signum() * erf)
}

#[test]
fn crps_and_quantiles_of_gaussian_draws_match_the_closed_forms() {
    let (mu, sigma) = (0.3, 0.7);
    let n = 200_000;
    let mut rng = tensor::rng(8);
    let mut draws: Vec<f64> = (0..n)
        .map(|_| mu + sigma * tensor::gaussian(&mut rng))
        .collect();
    draws.sort_by(f64::total_cmp);
    for z in [-2.0, -0.5, 0.0, 1.0, 3.0] {
        let t = mu + z * sigma;
        let pdf = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let closed =
            sigma * (z * (2.0 * phi_cdf(z) - 1.0) + 2.0 * pdf - 1.0 / std::f64::consts::PI.sqrt());
        let got = uncertainty::crps_sorted(&draws, t);
        assert!(
            (got - closed).abs() < 0.01 * sigma,
            "CRPS at z {z}: {got} vs {closed}"
        );
    }
    // Quantiles: μ ± 1.959964σ at 2.5% / 97.5%, μ ± 0.67449σ at 25% / 75%.
    for (p, z) in [
        (0.025, -1.959964),
        (0.975, 1.959964),
        (0.25, -0.67449),
        (0.75, 0.67449),
    ] {
        let q = uncertainty::quantile(&draws, p);
        assert!((q - (mu + z * sigma)).abs() < 0.02 * sigma, "q({p}) {q}");
    }
    // And through the per-pixel path: a truth at μ + 1.5σ lies inside the 90% and 95%
    // intervals (±1.645σ, ±1.96σ) and outside the 50% and 80% ones (±0.674σ, ±1.28σ).
    let m = 20_001;
    let samples: Vec<f32> = (0..m)
        .map(|_| (mu + sigma * tensor::gaussian(&mut rng)) as f32)
        .collect();
    let stats =
        uncertainty::pixel_stats(&samples, m, Some(&[(mu + 1.5 * sigma) as f32]), None).unwrap();
    let cov: Vec<f64> = stats
        .calibration
        .unwrap()
        .all
        .coverage
        .iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(cov, vec![0.0, 0.0, 1.0, 1.0]);
    assert!((f64::from(stats.upper[0]) - (mu + 1.959964 * sigma)).abs() < 0.05 * sigma);
}

#[test]
fn bad_requests_get_a_message_not_a_panic() {
    let one_chain = vec![0.0f32; 10];
    let e = uncertainty::pca(&one_chain, 1, 1).unwrap_err().to_string();
    assert!(e.contains("at least 2 chains"), "{e}");
    let e = uncertainty::pca(&[0.0; 40], 4, 4).unwrap_err().to_string();
    assert!(e.contains("K = 4 is more than chains − 1 = 3"), "{e}");
    // One chain: no components, intervals collapse onto the chain, coverage is a point test.
    let p = uncertainty::pca(&one_chain, 1, 0).unwrap();
    assert_eq!(p.k(), 0);
    let s = uncertainty::pixel_stats(&one_chain, 1, Some(&[0.0; 10]), None).unwrap();
    assert_eq!(s.lower, vec![0.0; 10]);
    assert_eq!(s.calibration.unwrap().all.z2, None);
    // A truth of the wrong size.
    let e = uncertainty::pixel_stats(&[0.0; 40], 4, Some(&[0.0; 3]), None).unwrap_err();
    assert!(e.to_string().contains("truth"), "{e}");
    // Chains that all agree: every direction has variance 0, nothing divides by it.
    let same = vec![0.5f32; 30];
    let p = uncertainty::pca(&same, 3, 2).unwrap();
    assert!(p.variances.iter().all(|v| *v == 0.0) && p.components.iter().all(|v| *v == 0.0));
    assert!(p.explained().iter().all(|v| v.is_finite()));
}
