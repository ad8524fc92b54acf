//! The lab's bundled scenes, each chosen so that the posterior keeps more than one mode and the
//! samplers' biases show.

use super::scene::{Component, LabScene, Measure};
use std::f64::consts::PI;

/// The bundled scenes, in the order the window lists them.
pub const NAMES: [&str; 4] = ["bimodal", "ring of 8", "25-mode grid", "two moons"];

/// The scene called `name` (one of [`NAMES`]).
pub fn example(name: &str) -> Option<LabScene> {
    Some(match name {
        "bimodal" => bimodal(),
        "ring of 8" => ring(),
        "25-mode grid" => grid(),
        "two moons" => moons(),
        _ => return None,
    })
}

/// Two correlated modes that one oblique projection cannot tell apart: the posterior keeps both.
pub fn bimodal() -> LabScene {
    LabScene {
        components: vec![
            Component {
                weight: 0.4,
                mean: [-1.2, -0.6],
                cov: [0.25, 0.12, 0.15],
            },
            Component {
                weight: 0.6,
                mean: [1.0, 0.8],
                cov: [0.12, -0.05, 0.3],
            },
        ],
        measure: Measure::Line {
            angle: (-53.13f64).to_radians(),
            offset: -0.15,
        },
        sigma_y: 0.3,
    }
}

/// Eight tight modes on a circle, the second coordinate observed: two modes explain y.
pub fn ring() -> LabScene {
    LabScene {
        components: (0..8)
            .map(|k| {
                let t = 2.0 * PI * k as f64 / 8.0;
                Component::isotropic(1.0, [2.0 * t.cos(), 2.0 * t.sin()], 0.2)
            })
            .collect(),
        measure: Measure::Line {
            angle: PI / 2.0,
            offset: 1.2,
        },
        sigma_y: 0.3,
    }
}

/// The MCGdiff benchmark's 5×5 grid of modes in the plane, unequal weights, one projection.
pub fn grid() -> LabScene {
    // Fixed, unequal weights (the benchmark draws them at random).
    const W: [f64; 25] = [
        0.9, 0.3, 1.4, 0.6, 0.2, 1.1, 0.5, 0.8, 1.6, 0.4, 0.7, 1.2, 0.3, 0.9, 1.0, 0.2, 1.5, 0.6,
        0.8, 1.3, 0.5, 1.0, 0.4, 1.2, 0.7,
    ];
    let mut components = vec![];
    for i in 0..5 {
        for j in 0..5 {
            let mean = [(i as f64 - 2.0) * 1.2, (j as f64 - 2.0) * 1.2];
            components.push(Component::isotropic(W[5 * i + j], mean, 0.15));
        }
    }
    LabScene {
        components,
        measure: Measure::Line {
            angle: 30f64.to_radians(),
            offset: 0.5,
        },
        sigma_y: 0.2,
    }
}

/// Two interleaved half-circles of small modes; the first coordinate observed cuts both.
pub fn moons() -> LabScene {
    let mut components = vec![];
    for k in 0..8 {
        let t = PI * k as f64 / 7.0;
        components.push(Component::isotropic(
            1.0,
            [1.5 * t.cos() - 0.75, 1.5 * t.sin() - 0.4],
            0.15,
        ));
        components.push(Component::isotropic(
            1.0,
            [0.75 - 1.5 * t.cos(), 0.4 - 1.5 * t.sin()],
            0.15,
        ));
    }
    LabScene {
        components,
        measure: Measure::Line {
            angle: 0.0,
            offset: 0.3,
        },
        sigma_y: 0.15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_valid_and_multimodal_after_the_measurement() {
        for name in NAMES {
            let scene = example(name).unwrap().scene().unwrap();
            let mut w = scene.posterior().weights();
            w.sort_by(|a, b| b.total_cmp(a));
            assert!(
                w[1] > 0.1,
                "{name}: the posterior keeps a second mode ({w:?})"
            );
        }
    }
}
