//! The 2-D lab's numerics: the pictures it draws against closed forms, its runs against exact
//! posterior samples, and every sampler's preset on every bundled scene.
#![allow(clippy::unwrap_used)]

use burn::tensor::Device;
use posterior_lab::lab::picture::{Request, cell_centre};
use posterior_lab::lab::run::{LabRun, RunRequest};
use posterior_lab::lab::{Bounds, Component, Density, Field, LabScene, Measure, examples};
use posterior_lab::samplers::{self, EpsMode, EpsParams, SamplerSpec, Solver};

/// One Gaussian N(m, C), one projection: every density and score has a closed form.
fn gaussian_scene() -> LabScene {
    LabScene {
        components: vec![Component {
            weight: 1.0,
            mean: [0.3, -0.2],
            cov: [0.5, 0.2, 0.3],
        }],
        measure: Measure::Line {
            angle: 0.6,
            offset: 0.4,
        },
        sigma_y: 0.3,
    }
}

/// The clean likelihood shading is N(y; a·x, σ_y²) up to its scale, whatever the prior.
#[test]
fn the_clean_likelihood_is_the_measurement_band() {
    let scene = examples::moons();
    let bounds = Bounds::default();
    let req = Request {
        scene,
        bounds,
        density: Density::Likelihood,
        noised: false,
        sigma: 0.3,
        grid: 30,
        fields: vec![],
        arrows: 0,
        reference: 0,
    };
    let pic = req.compute().unwrap();
    let (y, s2y) = (0.3, 0.15f64 * 0.15);
    let mut ratios = vec![];
    for i in 0..30 {
        for j in 0..30 {
            let p = cell_centre(&bounds, 30, i, j);
            let v = f64::from(pic.density[i * 30 + j]);
            if v > 1e-6 {
                ratios.push(v.ln() + (y - p[0]).powi(2) / (2.0 * s2y));
            }
        }
    }
    let spread = ratios.iter().cloned().fold(f64::MIN, f64::max)
        - ratios.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        ratios.len() > 50 && spread < 1e-3,
        "log-ratio spread {spread}"
    );
}

/// (C + s I)⁻¹ v for a symmetric 2×2 C = [[a, b], [b, d]].
fn solve2(c: [f64; 3], s: f64, v: [f64; 2]) -> [f64; 2] {
    let (a, b, d) = (c[0] + s, c[1], c[2] + s);
    let det = a * d - b * b;
    [(d * v[0] - b * v[1]) / det, (a * v[1] - b * v[0]) / det]
}

#[test]
fn drawn_densities_and_arrows_equal_the_closed_forms() {
    let scene = gaussian_scene();
    let (m, c) = ([0.3, -0.2], [0.5, 0.2, 0.3]);
    let a = [0.6f64.cos(), 0.6f64.sin()];
    let (y, s2y) = (0.4, 0.09);
    // Exact posterior of a Gaussian: S = C − C a aᵀ C/(aᵀCa + σ_y²), μ = m + C a (y − a·m)/(…).
    let ca = [c[0] * a[0] + c[1] * a[1], c[1] * a[0] + c[2] * a[1]];
    let g = a[0] * ca[0] + a[1] * ca[1] + s2y;
    let r = y - (a[0] * m[0] + a[1] * m[1]);
    let mu = [m[0] + ca[0] * r / g, m[1] + ca[1] * r / g];
    let s = [
        c[0] - ca[0] * ca[0] / g,
        c[1] - ca[0] * ca[1] / g,
        c[2] - ca[1] * ca[1] / g,
    ];
    let bounds = Bounds {
        min: [-2.0, -1.5],
        max: [2.5, 1.0],
    };
    for sigma in [0.05, 0.5, 2.0] {
        let req = Request {
            scene: scene.clone(),
            bounds,
            density: Density::Posterior,
            noised: true,
            sigma,
            grid: 40,
            fields: vec![Field::PriorScore, Field::PosteriorScore],
            arrows: 7,
            reference: 0,
        };
        let pic = req.compute().unwrap();
        // Density: N(x; μ, S + σ²I) up to its scale, so the ratio to the closed form is constant.
        let log_closed = |x: [f64; 2]| {
            let d = [x[0] - mu[0], x[1] - mu[1]];
            let q = solve2(s, sigma * sigma, d);
            -0.5 * (d[0] * q[0] + d[1] * q[1])
        };
        let mut ratios = vec![];
        for i in (0..40).step_by(7) {
            for j in (0..40).step_by(9) {
                let p = cell_centre(&bounds, 40, i, j);
                let v = f64::from(pic.density[i * 40 + j]);
                if v > 1e-6 {
                    ratios.push(v.ln() - log_closed(p));
                }
            }
        }
        let spread = ratios.iter().cloned().fold(f64::MIN, f64::max)
            - ratios.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            ratios.len() > 5 && spread < 1e-4,
            "σ {sigma}: log-ratio spread {spread}"
        );
        // Arrows: −(C + σ²I)⁻¹(x − m) and −(S + σ²I)⁻¹(x − μ).
        for (k, p) in pic.points.iter().enumerate() {
            let prior = solve2(c, sigma * sigma, [p[0] - m[0], p[1] - m[1]]);
            let post = solve2(s, sigma * sigma, [p[0] - mu[0], p[1] - mu[1]]);
            for (field, want) in [(0, prior), (1, post)] {
                let got = pic.fields[field].1[k];
                for q in 0..2 {
                    assert!(
                        (got[q] + want[q]).abs() < 1e-8 * (1.0 + want[q].abs()),
                        "σ {sigma} field {field} at {p:?}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }
}

fn run_to_end(
    scene: &LabScene,
    sampler: SamplerSpec,
    particles: usize,
) -> (posterior_lab::lab::RunInfo, Vec<posterior_lab::lab::Frame>) {
    let req = RunRequest {
        scene: scene.clone(),
        sampler,
        particles,
        seed: 7,
    };
    let (mut run, info, first) = LabRun::start(&req, &Device::flex()).unwrap();
    let mut frames = vec![first];
    while !run.is_done() {
        frames.push(run.step().unwrap());
    }
    (info, frames)
}

/// Exact draws and EPS with the exact denoiser end on the exact posterior of every bundled
/// scene: SW and mode-weight error within the spread between exact sets of the same size.
#[test]
fn exact_and_eps_particles_end_on_the_exact_posterior() {
    for name in examples::NAMES {
        let scene = examples::example(name).unwrap();
        for spec in [
            SamplerSpec::Exact,
            SamplerSpec::Eps(EpsParams {
                steps: 60,
                mode: EpsMode::Exact,
                solver: Solver::Heun,
                sigma_min: None,
                sigma_max: None,
                rho: 7.0,
                warm: None,
            }),
        ] {
            let (info, frames) = run_to_end(&scene, spec.clone(), 2000);
            let last = frames.last().unwrap();
            assert_eq!(frames.len(), info.total_steps + 1);
            let (sw_m, sw_s) = info.sw_floor;
            let (mode_m, mode_s) = info.mode_floor;
            eprintln!(
                "{name:<13} {:<6} SW {:.4} (exact sets {sw_m:.4} ± {sw_s:.4})  mode error {:.4} (exact sets {mode_m:.4} ± {mode_s:.4})",
                spec.name(),
                last.sw,
                last.mode_error
            );
            assert!(
                last.sw < sw_m + 4.0 * sw_s,
                "{name} {}: SW {}",
                spec.name(),
                last.sw
            );
            assert!(
                last.mode_error < mode_m + 4.0 * mode_s,
                "{name} {}: mode error {}",
                spec.name(),
                last.mode_error
            );
        }
    }
}

/// Every sampler's tested preset runs to the end on every bundled scene (the lab offers them
/// all), through the same code as `posterior-lab bench --lab`; Exact ends at the exact floor.
#[test]
fn every_preset_runs_on_every_scene() {
    let rows = posterior_lab::bench::lab_rows(500, 7).unwrap();
    assert_eq!(rows.len(), examples::NAMES.len() * samplers::ALL.len());
    for r in &rows {
        eprintln!(
            "{:<13} {:<36} {:>4} steps {:>6.2} s  SW {:.3} (exact {:.3})  mode error {:.3} (exact {:.3})",
            r.scene, r.preset, r.steps, r.seconds, r.sw, r.sw_floor.0, r.mode_error, r.mode_floor.0
        );
        assert!(r.sw.is_finite() && r.mode_error.is_finite());
        if r.preset == "Exact" {
            assert!(
                r.sw < r.sw_floor.0 + 4.0 * r.sw_floor.1,
                "{}: {}",
                r.scene,
                r.sw
            );
        }
    }
}

/// How long a picture takes (printed; the window never waits for one).
#[test]
fn picture_cost_is_printed() {
    use posterior_lab::lab::picture::Request;
    for name in examples::NAMES {
        let scene = examples::example(name).unwrap();
        let req = Request {
            scene,
            bounds: Bounds::default(),
            density: Density::Posterior,
            noised: true,
            sigma: 0.5,
            grid: 160,
            fields: vec![Field::PriorScore, Field::ExactGuidance, Field::DpsGuidance],
            arrows: 21,
            reference: 2000,
        };
        let t0 = std::time::Instant::now();
        let p = req.compute().unwrap();
        eprintln!(
            "{name:<13} picture 160x160 density + 3 fields on 21x21 + 2000 exact samples: {:.1} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(p.density.len(), 160 * 160);
    }
}
