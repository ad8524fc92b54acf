//! The U-Net's CPU inference path gives burn's outputs: every shipped network (prior, EPS
//! fine-tune with its extra input channels, consistency generator), at several noise levels,
//! batch sizes and picture sizes that need edge padding.
#![allow(clippy::unwrap_used)]

use burn::tensor::{Device, Tensor};
use posterior_lab::priors::network::read_model;
use posterior_lab::tensor;
use std::path::Path;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn cpu_path_equals_burn_on_every_shipped_network() {
    let dev = Device::flex();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut checked = 0;
    for entry in std::fs::read_dir(&models).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("card.ron").is_file() {
            continue;
        }
        let (card, burn_model, _) = read_model(&dir, &dev).unwrap();
        let fast = burn_model.clone().with_cpu_inference(&dev);
        assert!(
            fast.cpu.is_some(),
            "{}: the CPU path is built on flex",
            card.name
        );
        let c = card.trained_unet().unwrap().image_channels;
        let cond_c = card.trained_unet().unwrap().cond_channels;
        let [_, h0, w0] = card.shape;
        for (b, h, w) in [(1, h0, w0), (3, h0 + 2, w0 - 3)] {
            let mut rng = tensor::rng(5);
            let x = tensor::normal(&mut rng, [b, c, h, w], &dev);
            let cond = (cond_c > 0).then(|| tensor::normal(&mut rng, [b, cond_c, h, w], &dev));
            for sigma in [0.01, 0.5, 20.0] {
                let s = Tensor::<1>::full([b], sigma, &dev);
                let want = tensor::to_vec(&burn_model.denoise(x.clone(), cond.clone(), s.clone()))
                    .unwrap();
                let got = tensor::to_vec(&fast.denoise(x.clone(), cond.clone(), s)).unwrap();
                let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
                let d = max_diff(&got, &want);
                eprintln!(
                    "{:<22} b{b} {h}x{w} σ {sigma:<5} max |cpu − burn| {d:.2e}",
                    card.name
                );
                assert!(d < 2e-5 * scale, "{} σ {sigma}: {d}", card.name);
            }
        }
        // The CPU path's VJP against burn's autodiff, with edge padding and conditioning.
        for (b, h, w) in [(1, h0, w0), (2, h0 + 1, w0 - 2)] {
            let mut rng = tensor::rng(8);
            let x = tensor::normal(&mut rng, [b, c, h, w], &dev);
            let v = tensor::normal(&mut rng, [b, c, h, w], &dev);
            let cond = (cond_c > 0).then(|| tensor::normal(&mut rng, [b, cond_c, h, w], &dev));
            for sigma in [0.02, 0.7, 15.0] {
                let xa = x.clone().autodiff().require_grad();
                let s = Tensor::<1>::full([b], sigma, &dev);
                let d_ad = burn_model.denoise(xa.clone(), cond.clone().map(|c| c.autodiff()), s);
                let g = (d_ad.clone() * v.clone().autodiff()).sum().backward();
                let want_g = tensor::to_vec(&xa.grad(&g).unwrap()).unwrap();
                let want_d = tensor::to_vec(&d_ad.without_autodiff()).unwrap();
                let (d, pullback) = fast.denoise_vjp(&x, cond.as_ref(), sigma).unwrap();
                let got_d = tensor::to_vec(&d).unwrap();
                let got_g = tensor::to_vec(&pullback(v.clone()).unwrap()).unwrap();
                let scale = want_g.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
                let (dd, dg) = (max_diff(&got_d, &want_d), max_diff(&got_g, &want_g));
                eprintln!(
                    "{:<22} VJP b{b} {h}x{w} σ {sigma:<5} max |D| diff {dd:.2e}, max |vjp| diff {dg:.2e} (scale {scale:.1})",
                    card.name
                );
                assert!(
                    dd < 2e-5 && dg < 5e-5 * scale,
                    "{} σ {sigma}: {dd} {dg}",
                    card.name
                );
            }
        }
        // Gradients still go through burn (autodiff input): the same VJP either way.
        let x = tensor::normal(&mut tensor::rng(6), [2, c, h0, w0], &dev);
        let cond =
            (cond_c > 0).then(|| tensor::normal(&mut tensor::rng(7), [2, cond_c, h0, w0], &dev));
        let grad = |m: &posterior_lab::priors::unet::EdmUNet| {
            let xa = x.clone().autodiff().require_grad();
            let s = Tensor::<1>::full([2], 0.3, &dev);
            let g = m
                .denoise(xa.clone(), cond.clone().map(|c| c.autodiff()), s)
                .sum()
                .backward();
            tensor::to_vec(&xa.grad(&g).unwrap()).unwrap()
        };
        assert_eq!(grad(&burn_model), grad(&fast));
        checked += 1;
    }
    assert!(checked >= 3, "the shipped networks were found ({checked})");
}
