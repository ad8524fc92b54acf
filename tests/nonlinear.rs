//! The nonlinear measurements and photon noise: every VJP against finite differences, JPEG's
//! round trip against the `image` crate's encoder and decoder on real photos, the quality read
//! from a file, the Poisson likelihood against its closed form, and every sampler either
//! running on every new measurement or refusing it in one line.
#![allow(clippy::unwrap_used)]

mod common;

use burn::tensor::{Device, Tensor};
use posterior_lab::noise_model::NoiseModel;
use posterior_lab::operators::{
    Abs, Clip, Jpeg, MatrixOp, Operator, PhaseRetrieval, jpeg::quality_of_file,
};
use posterior_lab::tensor;

fn random(shape: [usize; 4], seed: u64, scale: f64, device: &Device) -> Tensor<4> {
    tensor::normal(&mut tensor::rng(seed), shape, device).mul_scalar(scale)
}

fn dot(a: &Tensor<4>, b: &Tensor<4>) -> f64 {
    tensor::to_f64(&tensor::inner(a.clone(), b.clone())).unwrap()[0]
}

/// ⟨J(x) u, w⟩ by central differences against ⟨u, vjp(x, w)⟩, relative to their size.
fn vjp_error(op: &dyn Operator, x: &Tensor<4>, seed: u64, h: f64) -> f64 {
    let device = x.device();
    let [_, c, hh, ww] = x.dims();
    let [oc, oh, ow] = op.output_shape();
    let u = random([1, c, hh, ww], seed, 1.0, &device);
    let w = random([1, oc, oh, ow], seed + 1, 1.0, &device);
    let plus = op.forward(x.clone() + u.clone().mul_scalar(h));
    let minus = op.forward(x.clone() - u.clone().mul_scalar(h));
    let fd = dot(&(plus - minus), &w) / (2.0 * h);
    let back = dot(&u, &op.vjp(x.clone(), w));
    (fd - back).abs() / fd.abs().max(back.abs()).max(1e-9)
}

#[test]
fn clip_abs_and_phase_retrieval_vjps_match_finite_differences() {
    let device = common::cpu();
    let shape = [2, 6, 5];
    // Away from the kinks (|g x| = 1, A x = 0) the derivative is classical; x is drawn so
    // that no value sits within the step of one.
    let x = random([1, 2, 6, 5], 7, 0.4, &device);
    let clip = Clip::new(shape, 1.5).unwrap();
    let a: Vec<f32> = tensor::to_vec(&random([1, 1, 12, 60], 3, 0.3, &device)).unwrap();
    let abs = Abs::new(Box::new(
        MatrixOp::from_array(shape, &[12, 60], a, &device).unwrap(),
    ))
    .unwrap();
    let pr = PhaseRetrieval::new(shape, 2.0, &device).unwrap();
    for (op, tol) in [
        (&clip as &dyn Operator, 1e-3),
        (&abs as &dyn Operator, 1e-3),
        (&pr as &dyn Operator, 2e-3),
    ] {
        for seed in [11, 12, 13] {
            let e = vjp_error(op, &x, seed, 1e-3);
            assert!(e < tol, "{}: relative VJP error {e:.2e}", op.name());
        }
    }
}

#[test]
fn phase_retrieval_is_the_magnitude_of_the_padded_orthonormal_dft() {
    let device = common::cpu();
    let (h, w) = (4usize, 6usize);
    let op = PhaseRetrieval::new([1, h, w], 4.0, &device).unwrap();
    let [_, nh, nw] = op.output_shape();
    assert_eq!((nh, nw), (h + 2 * 2, w + 2 * 3));
    let x = random([1, 1, h, w], 5, 0.5, &device);
    let xv = tensor::to_f64(&x).unwrap();
    let y = tensor::to_f64(&op.forward(x)).unwrap();
    // The textbook DFT of the zero-padded (x + 1)/2, fftshifted, by direct sums.
    let (ph, pw) = (2, 3);
    let mut worst = 0.0f64;
    for r in 0..nh {
        for c in 0..nw {
            let (ku, kv) = ((r + nh - nh / 2) % nh, (c + nw - nw / 2) % nw);
            let (mut re, mut im) = (0.0, 0.0);
            for i in 0..h {
                for j in 0..w {
                    let u = (xv[i * w + j] + 1.0) / 2.0;
                    let a = -std::f64::consts::TAU
                        * ((ku * (i + ph)) as f64 / nh as f64 + (kv * (j + pw)) as f64 / nw as f64);
                    re += u * a.cos();
                    im += u * a.sin();
                }
            }
            let mag = (re * re + im * im).sqrt() / ((nh * nw) as f64).sqrt();
            worst = worst.max((mag - y[r * nw + c]).abs());
        }
    }
    assert!(worst < 1e-5, "largest difference {worst:.2e}");
    // The zero frequency sits in the middle: the padded picture's sum over √N.
    let dc = xv.iter().map(|v| (v + 1.0) / 2.0).sum::<f64>() / ((nh * nw) as f64).sqrt();
    assert!((y[(nh / 2) * nw + nw / 2] - dc).abs() < 1e-5);
}

#[test]
fn jpeg_vjp_is_the_adjoint_of_its_unrounded_round_trip() {
    let device = common::cpu();
    for shape in [[3, 20, 18], [1, 13, 16]] {
        let op = Jpeg::new(shape, 30, &device).unwrap();
        let [c, h, w] = shape;
        let x = random([1, c, h, w], 1, 0.5, &device);
        let zero = op.linear_part(x.zeros_like());
        let u = random([1, c, h, w], 2, 1.0, &device);
        let v = random([1, c, h, w], 3, 1.0, &device);
        let ju = op.linear_part(u.clone()) - zero;
        let lhs = dot(&ju, &v);
        let rhs = dot(&u, &op.vjp(x.clone(), v.clone()));
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "{shape:?}: {lhs} vs {rhs}"
        );
        // The unrounded round trip is a projection: applying it twice changes nothing.
        let once = op.linear_part(x.clone());
        let twice = op.linear_part(once.clone());
        let diff = tensor::to_f64(&(once - twice).abs().max()).unwrap()[0];
        assert!(diff < 1e-4, "{shape:?}: not idempotent ({diff:.2e})");
    }
}

/// The straight-through gradient of ‖A(x) − y‖² leads a smooth start to a picture that encodes
/// to y's coefficients: the rounded residual falls.
#[test]
fn jpeg_straight_through_gradient_reduces_the_rounded_residual() {
    let device = common::cpu();
    let pic = demo_crop("coffee.jpg", 32);
    let op = Jpeg::new([3, 32, 32], 10, &device).unwrap();
    let truth = tensor::from_vec(pic, [1, 3, 32, 32], &device);
    let y = op.forward(truth.clone());
    let residual = |x: &Tensor<4>| {
        tensor::to_f64(&tensor::sum_sq(op.forward(x.clone()) - y.clone())).unwrap()[0]
    };
    let mut x = truth.zeros_like();
    let start = residual(&x);
    for _ in 0..40 {
        let g = op.vjp(x.clone(), op.forward(x.clone()) - y.clone());
        x = x - g.mul_scalar(0.5);
    }
    let end = residual(&x);
    assert!(end < 0.05 * start, "residual {start:.3} -> {end:.3}");
}

fn demo_crop(name: &str, side: usize) -> Vec<f32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    posterior_lab::photo::square_crop(&bytes, name, side)
        .unwrap()
        .data
}

fn to_levels(x: &[f32]) -> Vec<u8> {
    x.iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The `image` crate's round trip of a [C, H, W] picture of levels (grey or RGB).
fn image_crate_round_trip(levels: &[u8], [c, h, w]: [usize; 3], quality: u8) -> Vec<f32> {
    use image::ImageEncoder;
    let mut interleaved = vec![0u8; c * h * w];
    for ch in 0..c {
        for i in 0..h * w {
            interleaved[i * c + ch] = levels[ch * h * w + i];
        }
    }
    let mut buf = vec![];
    let colour = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .write_image(&interleaved, w as u32, h as u32, colour)
        .unwrap();
    assert_eq!(quality_of_file(&buf), Some((u32::from(quality), true)));
    let decoded = image::load_from_memory(&buf).unwrap();
    let raw = if c == 1 {
        decoded.to_luma8().into_raw()
    } else {
        decoded.to_rgb8().into_raw()
    };
    let mut out = vec![0.0f32; c * h * w];
    for ch in 0..c {
        for i in 0..h * w {
            out[ch * h * w + i] = f32::from(raw[i * c + ch]);
        }
    }
    out
}

fn psnr_levels(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// Grey pictures go through the same steps in both (the `image` crate keeps no chroma for
/// them): the differences are its integer DCT, its 8-bit intermediate rounding and the
/// decoder's final rounding and clamping. In colour it keeps full-resolution chroma (4:4:4)
/// where this round trip, as DDRM-JPEG's, averages it over 2×2 (4:2:0): the luma agrees as
/// closely, the colours differ by what 4:2:0 drops.
#[test]
fn jpeg_agrees_with_the_image_crates_encoder_and_decoder_on_photos() {
    let device = common::cpu();
    let side = 64;
    for name in ["coffee.jpg", "flower.jpg", "astronaut.jpg"] {
        let rgb = demo_crop(name, side);
        let grey: Vec<f32> = (0..side * side)
            .map(|i| {
                0.299 * rgb[i] + 0.587 * rgb[side * side + i] + 0.114 * rgb[2 * side * side + i]
            })
            .collect();
        for quality in [10u8, 30, 50, 75, 90] {
            for (pic, c) in [(&grey, 1usize), (&rgb, 3usize)] {
                let shape = [c, side, side];
                let levels = to_levels(pic);
                let theirs = image_crate_round_trip(&levels, shape, quality);
                let x: Vec<f32> = levels.iter().map(|v| f32::from(*v) / 127.5 - 1.0).collect();
                let op = Jpeg::new(shape, u32::from(quality), &device).unwrap();
                let ours: Vec<f32> =
                    tensor::to_vec(&op.forward(tensor::from_vec(x, [1, c, side, side], &device)))
                        .unwrap()
                        .iter()
                        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0))
                        .collect();
                let luma = |p: &[f32]| -> Vec<f32> {
                    if c == 1 {
                        return p.to_vec();
                    }
                    let n = side * side;
                    (0..n)
                        .map(|i| 0.299 * p[i] + 0.587 * p[n + i] + 0.114 * p[2 * n + i])
                        .collect()
                };
                let agree = psnr_levels(&luma(&ours), &luma(&theirs));
                let truth: Vec<f32> = levels.iter().map(|v| f32::from(*v)).collect();
                let error = psnr_levels(&luma(&theirs), &luma(&truth));
                eprintln!(
                    "{name} q{quality} c{c}: agreement {agree:.1} dB, JPEG's own error {error:.1} dB"
                );
                // A coefficient within the integer DCT's error of a half step rounds the other
                // way and errs by a whole step: rare, but a full step at quality 10. Measured
                // on these photos: grey 40.4–49.3 dB, colour luma 38.9–44.7 dB, always at least
                // 5 dB above the JPEG's own error.
                let floor = if c == 1 { 39.0 } else { 37.0 };
                assert!(
                    agree > error + 4.0 && agree > floor,
                    "{name} q{quality} c{c}: {agree:.1} dB (error {error:.1})"
                );
            }
        }
    }
}

#[test]
fn quality_is_read_from_a_real_files_tables() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/coffee.jpg");
    let (q, _) = quality_of_file(&std::fs::read(path).unwrap()).unwrap();
    assert!((1..=100).contains(&q));
    assert_eq!(quality_of_file(b"not a jpeg"), None);
}

#[test]
fn poisson_deviance_and_gradient_match_closed_forms() {
    let device = common::cpu();
    let peak = 20.0;
    let noise = NoiseModel::Poisson { peak };
    let y = tensor::from_vec(vec![-1.0f32, -0.5, 0.0, 0.9], [1, 1, 1, 4], &device);
    let z = tensor::from_vec(vec![-0.8f32, -0.4, 0.2, 0.7], [1, 1, 1, 4], &device);
    let (yv, zv) = (tensor::to_f64(&y).unwrap(), tensor::to_f64(&z).unwrap());
    // σ = 0: plain Poisson, k = P(y+1)/2, λ = P(z+1)/2.
    let dev = tensor::to_f64(&noise.deviance(0.0, y.clone(), z.clone())).unwrap()[0];
    let mut want = 0.0;
    let mut grads = vec![];
    for (yy, zz) in yv.iter().zip(&zv) {
        let (k, l) = (peak * (yy + 1.0) / 2.0, peak * (zz + 1.0) / 2.0);
        want += 2.0 * (if k > 0.0 { k * (k / l).ln() } else { 0.0 } - (k - l));
        grads.push(-(peak / 2.0) * (k / l - 1.0));
    }
    assert!((dev - want).abs() < 1e-4 * want, "{dev} vs {want}");
    let g = tensor::to_f64(&noise.nll_grad(0.0, y.clone(), z.clone())).unwrap();
    for (a, b) in g.iter().zip(&grads) {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    // With read noise, the gradient is half the deviance's derivative (finite differences).
    let sigma = 0.05;
    let g = tensor::to_f64(&noise.nll_grad(sigma, y.clone(), z.clone())).unwrap();
    for i in 0..4 {
        let mut bump = vec![0.0f32; 4];
        bump[i] = 1e-3;
        let dz = tensor::from_vec(bump, [1, 1, 1, 4], &device);
        let d = |t: Tensor<4>| tensor::to_f64(&noise.deviance(sigma, y.clone(), t)).unwrap()[0];
        let fd = (d(z.clone() + dz.clone()) - d(z.clone() - dz)) / 2e-3 / 2.0;
        assert!(
            (fd - g[i]).abs() < 2e-2 * g[i].abs().max(1.0),
            "value {i}: {fd} vs {}",
            g[i]
        );
    }
}

#[test]
fn poisson_measurements_count_photons() {
    let device = common::cpu();
    let peak = 30.0;
    let n = 20_000;
    let clean = Tensor::<4>::zeros([1, 1, 1, n], &device);
    let mut rng = tensor::rng(3);
    let y = NoiseModel::Poisson { peak }
        .simulate(clean, 0.0, &mut rng)
        .unwrap();
    let v = tensor::to_f64(&y).unwrap();
    // z = 0 is λ = P/2 photons: y = 2k/P − 1 has mean 0 and variance 2/P, on a grid of 2/P.
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var / (2.0 / peak) - 1.0).abs() < 0.05, "variance {var}");
    assert!(
        v.iter()
            .all(|x| ((x + 1.0) * peak / 2.0 - ((x + 1.0) * peak / 2.0).round()).abs() < 1e-4)
    );
}

#[test]
fn bad_parameters_end_in_one_message() {
    let device = common::cpu();
    let e = Jpeg::new([3, 8, 8], 0, &device).err().unwrap().to_string();
    assert!(e.contains("quality must be between 1 and 100"), "{e}");
    let e = Jpeg::new([3, 8, 8], 101, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("quality"), "{e}");
    let e = Clip::new([1, 4, 4], -1.0).err().unwrap().to_string();
    assert!(e.contains("gain must be a positive"), "{e}");
    let e = PhaseRetrieval::new([1, 4, 4], 0.5, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("oversample must be a number of at least 1"),
        "{e}"
    );
    let e = NoiseModel::Poisson { peak: 0.0 }
        .check()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("peak must be a positive"), "{e}");
    let e = Abs::new(Box::new(Clip::new([1, 4, 4], 2.0).unwrap()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("takes a linear operator"), "{e}");
}

// --- The plane: the grid posterior, and every sampler on every new measurement. ---

use posterior_lab::metrics::sliced_wasserstein;
use posterior_lab::priors::{Gmm, GmmDenoiser};
use posterior_lab::problem::Problem;
use posterior_lab::samplers::grid_posterior::GridPosterior;
use std::sync::Arc;

fn plane_problem(
    gmm: &Gmm,
    op: Arc<dyn Operator>,
    y: Vec<f32>,
    noise: (NoiseModel, f64),
) -> Problem {
    let device = common::cpu();
    let prior = Arc::new(GmmDenoiser::new(gmm.clone(), [1, 1, 2], &device).unwrap());
    let [c, h, w] = op.output_shape();
    let y = tensor::from_vec(y, [1, c, h, w], &device);
    Problem::with_noise(prior, op, y, noise, device).unwrap()
}

fn rows(points: &[[f64; 2]]) -> Vec<Vec<f64>> {
    points.iter().map(|p| p.to_vec()).collect()
}

/// SW between `a` and `b` over the spread of SW between independent sets of `b`'s law
/// (`draw` gives one): below 1 + 3 standard deviations' worth means indistinguishable.
fn sw_against_spread(
    a: &[Vec<f64>],
    b: &[Vec<f64>],
    mut draw: impl FnMut(u64) -> Vec<Vec<f64>>,
) -> (f64, f64, f64) {
    let mut rng = tensor::rng(99);
    let sw = sliced_wasserstein(a, b, 64, &mut rng);
    let floor: Vec<f64> = (0..8)
        .map(|k| sliced_wasserstein(&draw(100 + k), b, 64, &mut rng))
        .collect();
    let mean = floor.iter().sum::<f64>() / floor.len() as f64;
    let sd =
        (floor.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (floor.len() - 1) as f64).sqrt();
    (sw, mean, sd)
}

/// On a linear scene the grid must reproduce the closed-form mixture posterior.
#[test]
fn grid_posterior_matches_the_closed_form_posterior_on_a_linear_scene() {
    let scene = posterior_lab::lab::examples::bimodal();
    let device = common::cpu();
    let problem = scene.problem(&device).unwrap();
    let gmm = scene.prior().unwrap();
    let exact = scene.scene().unwrap().posterior().clone();
    let grid = GridPosterior::new(&problem, &gmm, 1024).unwrap();
    let n = 3000;
    let from_grid = rows(&grid.sample(n, &mut tensor::rng(1)));
    let reference = exact.sample(n, &mut tensor::rng(2)).0;
    let (sw, mean, sd) = sw_against_spread(&from_grid, &reference, |s| {
        exact.sample(n, &mut tensor::rng(s)).0
    });
    assert!(
        sw < mean + 3.0 * sd,
        "SW {sw:.4} against exact sets' {mean:.4} ± {sd:.4}"
    );
    // Mode weights: the grid's own mass per prior region against the mixture's samples.
    let w = grid.mode_weights(&gmm);
    let f = posterior_lab::metrics::mode_frequencies(
        &gmm,
        &exact.sample(40_000, &mut tensor::rng(3)).0,
    );
    for (a, b) in w.iter().zip(&f) {
        assert!((a - b).abs() < 0.01, "mode weights {w:?} vs {f:?}");
    }
}

/// Random-walk Metropolis on the exact density, many chains, long: the independent check of the
/// grid for nonlinear measurements.
fn metropolis(
    log_density: impl Fn([f64; 2]) -> f64,
    starts: &[[f64; 2]],
    steps: usize,
    step: f64,
) -> Vec<Vec<f64>> {
    let mut rng = tensor::rng(7);
    let mut out = vec![];
    for &s in starts {
        let (mut x, mut lx) = (s, log_density(s));
        for k in 0..steps {
            let p = [
                x[0] + step * tensor::gaussian(&mut rng),
                x[1] + step * tensor::gaussian(&mut rng),
            ];
            let lp = log_density(p);
            let u: f64 = rand::RngExt::random(&mut rng);
            if u.ln() < lp - lx {
                (x, lx) = (p, lp);
            }
            if k >= steps / 4 && k % 50 == 0 {
                out.push(x.to_vec());
            }
        }
    }
    out
}

#[test]
fn grid_posterior_matches_a_long_mcmc_run_through_a_magnitude_and_through_photon_counts() {
    let device = common::cpu();
    let scene = posterior_lab::lab::examples::bimodal();
    let gmm = scene.prior().unwrap();
    let a = [0.6f64, -0.8];
    let magnitude: Arc<dyn Operator> = Arc::new(
        Abs::new(Box::new(
            MatrixOp::from_array([1, 1, 2], &[1, 2], vec![0.6, -0.8], &device).unwrap(),
        ))
        .unwrap(),
    );
    let clip: Arc<dyn Operator> = Arc::new(Clip::new([1, 1, 2], 1.5).unwrap());
    let sigma = 0.25;
    let peak = 8.0;
    type Case = (
        Arc<dyn Operator>,
        Vec<f32>,
        (NoiseModel, f64),
        Box<dyn Fn([f64; 2]) -> f64>,
    );
    let cases: Vec<Case> = vec![
        (
            magnitude,
            vec![0.9],
            (NoiseModel::Gaussian, sigma),
            Box::new(move |x: [f64; 2]| {
                let r = 0.9 - (a[0] * x[0] + a[1] * x[1]).abs();
                -r * r / (2.0 * sigma * sigma)
            }),
        ),
        (
            clip,
            vec![-0.5, 0.75],
            (NoiseModel::Poisson { peak }, 0.0),
            Box::new(move |x: [f64; 2]| {
                [-0.5, 0.75]
                    .iter()
                    .zip(x)
                    .map(|(y, xi)| {
                        let k: f64 = peak * (y + 1.0) / 2.0;
                        let l = (peak * ((1.5 * xi).clamp(-1.0, 1.0) + 1.0) / 2.0).max(0.5);
                        k * l.ln() - l
                    })
                    .sum()
            }),
        ),
    ];
    for (op, y, noise, log_lik) in cases {
        let name = op.name();
        let problem = plane_problem(&gmm, op, y, noise);
        let grid = GridPosterior::new(&problem, &gmm, 1024).unwrap();
        let g2 = gmm.clone();
        let density = move |x: [f64; 2]| g2.noised_log_density(&x, 0.0) + log_lik(x);
        let starts: Vec<[f64; 2]> = (0..40)
            .map(|i| [gmm.mean(i % 2)[0], gmm.mean(i % 2)[1]])
            .collect();
        let chains = metropolis(&density, &starts, 20_000, 0.5);
        let n = chains.len();
        let from_grid = rows(&grid.sample(n, &mut tensor::rng(5)));
        let (sw, mean, sd) = sw_against_spread(&chains, &from_grid, |s| {
            rows(&grid.sample(n, &mut tensor::rng(s)))
        });
        eprintln!("{name}: SW {sw:.4}, grid sets {mean:.4} ± {sd:.4} ({n} points)");
        // MCMC draws are correlated: allow twice the independent sets' spread.
        assert!(
            sw < 2.0 * (mean + 3.0 * sd),
            "{name}: SW {sw:.4} against {mean:.4} ± {sd:.4}"
        );
        let w = grid.mode_weights(&gmm);
        let f = posterior_lab::metrics::mode_frequencies(&gmm, &chains);
        for (p, q) in w.iter().zip(&f) {
            assert!(
                (p - q).abs() < 0.05,
                "{name}: mode weights {w:?} vs MCMC {f:?}"
            );
        }
    }
}

#[test]
fn every_sampler_runs_on_each_new_measurement_or_refuses_it_in_one_line() {
    let device = common::cpu();
    let shape = [3, 16, 16];
    let d = 3 * 16 * 16;
    let picture = demo_crop("flower.jpg", 16);
    let gmm = Gmm::new(
        vec![0.5, 0.5],
        vec![
            picture.iter().map(|v| f64::from(*v)).collect(),
            vec![0.0; d],
        ],
        vec![
            posterior_lab::linalg::Mat::from_diag(&vec![0.05; d]),
            posterior_lab::linalg::Mat::from_diag(&vec![0.3; d]),
        ],
    )
    .unwrap();
    let prior = Arc::new(GmmDenoiser::new(gmm, shape, &device).unwrap());
    let a: Vec<f32> = tensor::to_vec(&random([1, 1, 40, d], 3, 0.05, &device)).unwrap();
    let ops: Vec<(Arc<dyn Operator>, (NoiseModel, f64))> = vec![
        (
            Arc::new(Jpeg::new(shape, 20, &device).unwrap()),
            (NoiseModel::Gaussian, 0.0),
        ),
        (
            Arc::new(Clip::new(shape, 2.0).unwrap()),
            (NoiseModel::Gaussian, 0.05),
        ),
        (
            Arc::new(PhaseRetrieval::new(shape, 2.0, &device).unwrap()),
            (NoiseModel::Gaussian, 0.05),
        ),
        (
            Arc::new(
                Abs::new(Box::new(
                    MatrixOp::from_array(shape, &[40, d], a, &device).unwrap(),
                ))
                .unwrap(),
            ),
            (NoiseModel::Gaussian, 0.05),
        ),
        (
            Arc::new(posterior_lab::operators::Identity::new(shape)),
            (NoiseModel::Poisson { peak: 20.0 }, 0.0),
        ),
    ];
    let runs = [
        "Dps(steps: 10)",
        "Daps(steps: 5)",
        "Ald(steps: 10)",
        "Almc(steps: 10, warmup: 5)",
        "NoiseSpaceLangevin(steps: 5)",
        "DiffPir(steps: 5)",
        "Prior(steps: 5)",
        "Auto(speed: Fast)",
    ];
    // Photon noise through a diagonal A: through its Gaussian approximation; else refused.
    let gaussian_steps = [
        "Ddrm(steps: 5)",
        "PiGdm(steps: 5)",
        "Eps(steps: 5)",
        "Exact",
    ];
    let truth = tensor::from_vec(picture.clone(), [1, 3, 16, 16], &device);
    for (op, noise) in ops {
        let y = posterior_lab::recipe::simulate_measurement(op.as_ref(), truth.clone(), noise, 1)
            .unwrap();
        let problem =
            Problem::with_noise(prior.clone(), op.clone(), y, noise, device.clone()).unwrap();
        let label = problem.measurement_label();
        for line in runs {
            let spec = posterior_lab::samplers::parse(line).unwrap();
            let mut s = posterior_lab::samplers::build(&spec, &problem, 2, 1)
                .unwrap_or_else(|e| panic!("{line} on {label}: {e}"));
            posterior_lab::samplers::run(s.as_mut(), &problem, |_| {})
                .unwrap_or_else(|e| panic!("{line} on {label}: {e}"));
            let out = tensor::to_vec(&s.samples()).unwrap();
            assert!(
                out.iter().all(|v| v.is_finite()),
                "{line} on {label}: non-finite samples"
            );
            // Each says which likelihood it uses (the prior alone uses none).
            if !line.starts_with("Prior") {
                let detail = s.detail().unwrap_or_default();
                assert!(
                    detail.contains("likelihood: "),
                    "{line} on {label}: {detail}"
                );
            }
            if line.starts_with("Auto") {
                let detail = s.detail().unwrap();
                let chosen = posterior_lab::samplers::auto::chosen_in(&detail).unwrap();
                assert!(
                    posterior_lab::samplers::auto::GENERAL
                        .iter()
                        .any(|r| r.lines.contains(&chosen)),
                    "{label}: Auto chose {chosen}"
                );
            }
        }
        for line in gaussian_steps {
            let spec = posterior_lab::samplers::parse(line).unwrap();
            let built = posterior_lab::samplers::build(&spec, &problem, 2, 1);
            if problem.is_whitenable() && line != "Exact" {
                let mut s = built.unwrap_or_else(|e| panic!("{line} on {label}: {e}"));
                posterior_lab::samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
                let detail = s.detail().unwrap();
                assert!(
                    detail.contains("photon noise as Gaussian"),
                    "{line}: {detail}"
                );
                continue;
            }
            // ΠGDM takes a decoded round trip through its pseudo-inverse construction.
            if problem.is_round_trip() && line.starts_with("PiGdm") {
                let mut s = built.unwrap_or_else(|e| panic!("{line} on {label}: {e}"));
                posterior_lab::samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
                let out = tensor::to_vec(&s.samples()).unwrap();
                assert!(out.iter().all(|v| v.is_finite()), "{line} on {label}");
                continue;
            }
            let e = built.err().unwrap().to_string();
            assert!(
                e.contains("cannot take") && !e.contains('\n'),
                "{line} on {label}: {e}"
            );
        }
    }
}
