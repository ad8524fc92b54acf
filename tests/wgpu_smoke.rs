//! Smoke tests of the wgpu path (lavapipe in CI): the same denoiser, operator and a DPS step
//! (autodiff through the prior) on wgpu agree with the CPU backend.
//!
//! Without any wgpu adapter the test says so and passes, except under CI (CI=true), where an
//! adapter is required because `.ci/run` installs Mesa's software Vulkan driver.
#![allow(clippy::unwrap_used)]

mod common;

use posterior_lab::backend::{self, BackendKind};
use posterior_lab::priors::{Denoiser, GmmDenoiser};
use posterior_lab::samplers::{self, DpsParams, SamplerSpec};
use posterior_lab::tensor;

#[test]
fn wgpu_agrees_with_cpu() {
    let adapters = backend::adapters();
    if adapters.is_empty() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide a wgpu adapter (mesa-vulkan-drivers)"
        );
        eprintln!("no wgpu adapter: wgpu smoke test skipped");
        return;
    }
    let sel = backend::select(Some(BackendKind::Wgpu)).unwrap();
    eprintln!("{}", sel.notice);
    let cpu = common::cpu();
    let bed = common::bimodal_bed();

    // Denoiser.
    let mut rng = tensor::rng(1);
    let x: Vec<f64> = tensor::gaussian_vec(&mut rng, 8 * 4);
    let on = |device: &burn::tensor::Device| {
        let den = GmmDenoiser::new(bed.gmm.clone(), bed.shape, device).unwrap();
        tensor::to_f64(&den.denoise(tensor::from_f64(&x, [8, 1, 2, 2], device), 0.3)).unwrap()
    };
    let (a, b) = (on(&sel.device), on(&cpu));
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-4, "wgpu {u} vs cpu {v}");
    }

    // A few DPS steps: gradients through the prior by autodiff, on wgpu.
    let run = |device: &burn::tensor::Device| {
        let problem = bed.problem(device);
        let spec = SamplerSpec::Dps(DpsParams {
            steps: 3,
            zeta: Some(1.0),
            sigma_min: None,
            sigma_max: None,
            rho: 7.0,
        });
        let mut s = samplers::build(&spec, &problem, 4, 9).unwrap();
        samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
        tensor::to_f64(&s.samples()).unwrap()
    };
    let (a, b) = (run(&sel.device), run(&cpu));
    for (u, v) in a.iter().zip(&b) {
        assert!(
            u.is_finite() && (u - v).abs() < 1e-2 * (1.0 + v.abs()),
            "DPS on wgpu {u} vs cpu {v}"
        );
    }
}
