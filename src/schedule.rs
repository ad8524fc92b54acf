//! Noise-level grids and conversions between the OU/VP time and the VE σ.

/// Karras et al. (2022) grid: n levels from σ_max down to σ_min with exponent ρ.
pub fn karras(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f64> {
    if n == 1 {
        return vec![sigma_max];
    }
    let a = sigma_max.powf(1.0 / rho);
    let b = sigma_min.powf(1.0 / rho);
    (0..n)
        .map(|i| (a + i as f64 / (n - 1) as f64 * (b - a)).powf(rho))
        .collect()
}

/// n levels spaced geometrically from σ_max down to σ_min.
pub fn geometric(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f64> {
    if n == 1 {
        return vec![sigma_max];
    }
    let r = (sigma_min / sigma_max).ln();
    (0..n)
        .map(|i| sigma_max * (r * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// The OU process x_t = e^{-t} x_0 + √(1 − e^{-2t}) ε is the VE process at σ = √(e^{2t} − 1),
/// scaled by e^{-t}.
pub fn sigma_from_ou_time(t: f64) -> f64 {
    (2.0 * t).exp_m1().sqrt()
}

pub fn ou_time_from_sigma(sigma: f64) -> f64 {
    0.5 * (sigma * sigma).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karras_endpoints_and_order() {
        let s = karras(10, 0.002, 80.0, 7.0);
        assert!((s[0] - 80.0).abs() < 1e-9 && (s[9] - 0.002).abs() < 1e-12);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn ou_round_trip() {
        for t in [1e-3, 0.1, 1.0, 3.0] {
            assert!((ou_time_from_sigma(sigma_from_ou_time(t)) - t).abs() < 1e-12);
        }
    }
}
