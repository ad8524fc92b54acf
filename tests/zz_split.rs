#![allow(clippy::unwrap_used)]
use burn::tensor::{Device, Tensor};
use posterior_lab::priors::unet::{EdmUNet, UNetConfig};
use posterior_lab::tensor;
use std::time::Instant;

#[test]
fn nfe_loop() {
    let dev = Device::flex();
    let cfg = UNetConfig {
        base_channels: 16,
        channel_mult: vec![1, 2, 4],
        ..UNetConfig::default()
    };
    let model = EdmUNet::new(&cfg, &dev);
    let b = 16;
    let side = 28;
    let x = tensor::normal(&mut tensor::rng(1), [b, 1, side, side], &dev);
    let s = Tensor::<1>::full([b], 0.5, &dev);
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < 2.0 {
        tensor::to_vec(&model.denoise(x.clone(), None, s.clone())).unwrap();
        n += 1;
    }
    eprintln!(
        "{:.1} ms per NFE b16",
        t0.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
