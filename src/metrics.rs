//! Distances between sample sets, mode weights and image quality figures.

use crate::priors::Gmm;
use crate::tensor::{self, Rng};

/// Sliced Wasserstein-1 distance: the **mean** over `n_dirs` random unit directions of the 1-D
/// W1 distance between the projected sets (the MCGdiff `np.mean` convention, not `np.max`).
pub fn sliced_wasserstein(a: &[Vec<f64>], b: &[Vec<f64>], n_dirs: usize, rng: &mut Rng) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let d = a[0].len();
    let mut total = 0.0;
    for _ in 0..n_dirs {
        let mut dir = tensor::gaussian_vec(rng, d);
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        dir.iter_mut().for_each(|v| *v /= norm);
        let mut pa: Vec<f64> = a.iter().map(|x| crate::linalg::dot(x, &dir)).collect();
        let mut pb: Vec<f64> = b.iter().map(|x| crate::linalg::dot(x, &dir)).collect();
        pa.sort_by(f64::total_cmp);
        pb.sort_by(f64::total_cmp);
        total += wasserstein_1d_sorted(&pa, &pb);
    }
    total / n_dirs as f64
}

/// W1 between two sorted 1-D samples of any sizes: ∫₀¹ |F⁻¹(u) − G⁻¹(u)| du, exactly, by
/// walking the merged breakpoints of the two empirical quantile functions.
pub fn wasserstein_1d_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut u = 0.0;
    let mut total = 0.0;
    while i < a.len() && j < b.len() {
        let next_a = (i + 1) as f64 / na;
        let next_b = (j + 1) as f64 / nb;
        let next = next_a.min(next_b);
        total += (next - u) * (a[i] - b[j]).abs();
        u = next;
        if next_a <= next {
            i += 1;
        }
        if next_b <= next {
            j += 1;
        }
    }
    total
}

/// Fraction of samples closest (by responsibility) to each component of `gmm`.
pub fn mode_frequencies(gmm: &Gmm, samples: &[Vec<f64>]) -> Vec<f64> {
    let mut counts = vec![0.0; gmm.len()];
    for s in samples {
        counts[gmm.classify(s)] += 1.0;
    }
    let n = samples.len().max(1) as f64;
    counts.into_iter().map(|c| c / n).collect()
}

/// Total-variation distance between the samples' mode frequencies and the mixture's weights.
pub fn mode_weight_error(gmm: &Gmm, samples: &[Vec<f64>]) -> f64 {
    let freq = mode_frequencies(gmm, samples);
    0.5 * freq
        .iter()
        .zip(gmm.weights())
        .map(|(f, w)| (f - w).abs())
        .sum::<f64>()
}

/// PSNR in dB of `x` against `truth` for data in [-1, 1] (peak-to-peak 2).
pub fn psnr(x: &[f32], truth: &[f32]) -> f64 {
    let mse: f64 = x
        .iter()
        .zip(truth)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum::<f64>()
        / x.len().max(1) as f64;
    10.0 * (4.0 / mse.max(1e-20)).log10()
}

/// Per-pixel mean and (population) variance over chains of a [B, d] buffer.
pub fn mean_variance(samples: &[f32], chains: usize) -> (Vec<f32>, Vec<f32>) {
    const BLOCK: usize = 4096;
    let d = samples.len() / chains.max(1);
    let mut mean = vec![0.0f32; d];
    let mut var = vec![0.0f32; d];
    // Welford in f64 block by block (stable for many chains), written out as f32: a large
    // photo's figures cost 2 floats a value, not 6.
    let (mut m, mut m2) = (vec![0.0f64; BLOCK], vec![0.0f64; BLOCK]);
    for (b, (mean, var)) in mean
        .chunks_mut(BLOCK)
        .zip(var.chunks_mut(BLOCK))
        .enumerate()
    {
        let (start, len) = (b * BLOCK, mean.len());
        m[..len].fill(0.0);
        m2[..len].fill(0.0);
        for (n, row) in samples.chunks(d.max(1)).take(chains).enumerate() {
            let k = (n + 1) as f64;
            for i in 0..len {
                let v = f64::from(row[start + i]);
                let delta = v - m[i];
                m[i] += delta / k;
                m2[i] += delta * (v - m[i]);
            }
        }
        for i in 0..len {
            mean[i] = m[i] as f32;
            var[i] = (m2[i] / chains.max(1) as f64) as f32;
        }
    }
    (mean, var)
}

/// How much fine detail a picture holds where it was restored, against the truth's: the energy
/// of its 4-neighbour Laplacian over the pixels whose stencil lies in `region` (all pixels for
/// None), divided by the truth's there. A posterior mean of a large hole is blurred (≪ 1); a
/// sample that looks like a photo has about the truth's detail (≈ 1).
pub fn detail_ratio(
    x: &[f32],
    truth: &[f32],
    [c, h, w]: [usize; 3],
    region: Option<&[f32]>,
) -> f64 {
    let inside = |r: usize, q: usize| region.is_none_or(|m| m[r * w + q] > 0.5);
    let (mut ex, mut et) = (0.0f64, 0.0f64);
    for ch in 0..c {
        let at = |v: &[f32], r: usize, q: usize| f64::from(v[ch * h * w + r * w + q]);
        for r in 1..h.saturating_sub(1) {
            for q in 1..w.saturating_sub(1) {
                if !(inside(r, q) && inside(r - 1, q) && inside(r + 1, q)) {
                    continue;
                }
                if !(inside(r, q - 1) && inside(r, q + 1)) {
                    continue;
                }
                let lap = |v: &[f32]| {
                    4.0 * at(v, r, q)
                        - at(v, r - 1, q)
                        - at(v, r + 1, q)
                        - at(v, r, q - 1)
                        - at(v, r, q + 1)
                };
                ex += lap(x).powi(2);
                et += lap(truth).powi(2);
            }
        }
    }
    ex / et.max(1e-20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_ratio_of_a_blur_is_below_one_and_of_the_truth_is_one() {
        let (h, w) = (16, 16);
        let truth: Vec<f32> = (0..h * w)
            .map(|i| if (i / w + i % w) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!((detail_ratio(&truth, &truth, [1, h, w], None) - 1.0).abs() < 1e-12);
        let flat = vec![0.0f32; h * w];
        assert!(detail_ratio(&flat, &truth, [1, h, w], None) < 1e-12);
        let half: Vec<f32> = truth.iter().map(|v| 0.5 * v).collect();
        assert!((detail_ratio(&half, &truth, [1, h, w], None) - 0.25).abs() < 1e-9);
        // Only the region counts: the picture outside it may be anything.
        let mut region = vec![0.0f32; h * w];
        region[5 * w + 4..5 * w + 9]
            .iter_mut()
            .for_each(|m| *m = 1.0);
        region[4 * w + 4..4 * w + 9]
            .iter_mut()
            .for_each(|m| *m = 1.0);
        region[6 * w + 4..6 * w + 9]
            .iter_mut()
            .for_each(|m| *m = 1.0);
        let mut x = truth.clone();
        x[0] = 7.0;
        assert!((detail_ratio(&x, &truth, [1, h, w], Some(&region)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn w1_of_shifted_sets_is_the_shift() {
        let a: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 2.5).collect();
        assert!((wasserstein_1d_sorted(&a, &b) - 2.5).abs() < 1e-12);
        // Unequal sizes: {0, 1} vs {0, 0.5, 1} → ∫|F⁻¹−G⁻¹| = 1/6·0.5 + 1/6·0.5 = 1/6.
        let w = wasserstein_1d_sorted(&[0.0, 1.0], &[0.0, 0.5, 1.0]);
        assert!((w - 1.0 / 6.0).abs() < 1e-12, "{w}");
    }

    #[test]
    fn mean_variance_matches_two_pass() {
        let s = [1.0f32, 2.0, 3.0, 6.0, 5.0, 10.0];
        let (m, v) = mean_variance(&s, 3);
        assert_eq!(m, vec![3.0, 6.0]);
        assert!((v[0] - 8.0 / 3.0).abs() < 1e-6 && (v[1] - 32.0 / 3.0).abs() < 1e-5);
    }
}
