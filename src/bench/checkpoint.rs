//! `posterior-lab bench --checkpoint NAME`: the time of one network call (NFE) and of one
//! vector-Jacobian product (VJP) of an imported checkpoint at its own size, per batch size,
//! on the selected backend. `bench/pytorch/adm_peer.py` runs it interleaved with PyTorch on the
//! same weights.

use crate::backend::Selection;
use crate::error::Result;
use crate::tensor;
use burn::tensor::Tensor;
use std::time::Instant;

/// Median seconds of NFE and VJP for each batch size; printed and returned.
pub fn checkpoint_table(
    sel: &Selection,
    model: &str,
    class: Option<usize>,
    batches: &[usize],
    passes: usize,
    sigma: f64,
) -> Result<Vec<(usize, f64, f64)>> {
    let path = crate::models::resolve(model, std::path::Path::new("."))?;
    let prior = crate::priors::load_model(&path, None, class, &sel.device)?;
    let [c, h, w] = prior.shape();
    println!("== {} on {} ==", prior.describe(), sel.description);
    println!("| batch | {h}×{w} NFE (s) | VJP (s) |");
    println!("|---|---|---|");
    let mut rows = vec![];
    for &b in batches {
        let x = tensor::normal(&mut tensor::rng(1), [b, c, h, w], &sel.device);
        let read = |t: &Tensor<4>| tensor::to_vec(&t.clone().sum()).map(|_| ());
        // One call first: kernels compiled, buffers allocated.
        read(&prior.denoise(x.clone(), sigma))?;
        let mut nfe = vec![];
        let mut vjp = vec![];
        for _ in 0..passes.max(1) {
            let t = Instant::now();
            read(&prior.denoise(x.clone(), sigma))?;
            nfe.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let v = x.clone();
            let (_, g) =
                crate::samplers::grad_through_prior("bench", &x, prior.as_ref(), sigma, |d| {
                    d * v.clone()
                })?;
            read(&g)?;
            vjp.push(t.elapsed().as_secs_f64());
        }
        let (n, v) = (median(&mut nfe), median(&mut vjp));
        println!("| {b} | {n:.3} | {v:.3} |");
        rows.push((b, n, v));
    }
    Ok(rows)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
