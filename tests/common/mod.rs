//! Shared helpers for the integration tests; the beds themselves live in
//! `posterior_lab::testbeds` so that the bench command measures the same ones.
#![allow(dead_code)]

use burn::tensor::Device;
use posterior_lab::tensor;
#[allow(unused_imports)] // not every test binary uses the beds
pub use posterior_lab::testbeds::*;

pub fn cpu() -> Device {
    Device::flex()
}

/// Reads a [B, C, H, W] tensor back as B rows of f64.
pub fn rows(t: &burn::tensor::Tensor<4>) -> Vec<Vec<f64>> {
    let b = t.dims()[0];
    tensor::rows_f64(&tensor::to_vec(t).unwrap(), b)
}
