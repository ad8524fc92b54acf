//! Every operator: adjoint identity ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ on random inputs and several shapes,
//! the structured solve against a dense f64 reference, and shape checks at the boundary.
#![allow(clippy::unwrap_used)]

mod common;

use burn::tensor::Device;
use posterior_lab::linalg::{Cholesky, Mat};
use posterior_lab::operators::{Blur, Downsample, Grayscale, Identity, Mask, MatrixOp, Operator};
use posterior_lab::tensor;

fn random_mask(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = tensor::rng(seed);
    let n: usize = shape.iter().product();
    (0..n)
        .map(|_| {
            if tensor::gaussian(&mut rng) > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn operators(shape: [usize; 3], device: &Device) -> Vec<Box<dyn Operator>> {
    let [c, h, w] = shape;
    let mut ops: Vec<Box<dyn Operator>> = vec![
        Box::new(Identity::new(shape)),
        Box::new(Mask::from_array(shape, &[h, w], random_mask(&[h, w], 1), device).unwrap()),
        Box::new(Mask::from_array(shape, &[c, h, w], random_mask(&[c, h, w], 2), device).unwrap()),
        Box::new(Blur::new(shape, 0.8, device).unwrap()),
        Box::new(Blur::new(shape, 2.5, device).unwrap()),
        Box::new(Grayscale::new(shape).unwrap()),
    ];
    for f in [2, 4] {
        if h % f == 0 && w % f == 0 {
            ops.push(Box::new(Downsample::new(shape, f).unwrap()));
        }
    }
    let d = c * h * w;
    for m in [1, 5] {
        let mut rng = tensor::rng(m as u64 + 10);
        let a: Vec<f32> = (0..m * d)
            .map(|_| tensor::gaussian(&mut rng) as f32)
            .collect();
        ops.push(Box::new(
            MatrixOp::from_array(shape, &[m, d], a, device).unwrap(),
        ));
    }
    ops
}

const SHAPES: [[usize; 3]; 4] = [[1, 4, 4], [3, 8, 8], [2, 6, 10], [1, 3, 5]];

#[test]
fn adjoint_identity_holds_for_every_operator_and_shape() {
    let device = common::cpu();
    for shape in SHAPES {
        for op in operators(shape, &device) {
            let mut rng = tensor::rng(42);
            let [c, h, w] = shape;
            let [oc, oh, ow] = op.output_shape();
            let x = tensor::normal(&mut rng, [3, c, h, w], &device);
            let y = tensor::normal(&mut rng, [3, oc, oh, ow], &device);
            let ax = op.forward(x.clone());
            let aty = op.adjoint(y.clone());
            assert_eq!(ax.dims(), [3, oc, oh, ow], "{} forward shape", op.name());
            assert_eq!(aty.dims(), [3, c, h, w], "{} adjoint shape", op.name());
            let lhs = tensor::to_f64(&tensor::inner(ax.clone(), y.clone())).unwrap();
            let rhs = tensor::to_f64(&tensor::inner(x.clone(), aty)).unwrap();
            let scale = tensor::to_f64(&tensor::sum_sq(ax)).unwrap();
            let ynorm = tensor::to_f64(&tensor::sum_sq(y)).unwrap();
            for b in 0..3 {
                let tol = 1e-5 * (scale[b] * ynorm[b]).sqrt().max(1.0);
                assert!(
                    (lhs[b] - rhs[b]).abs() <= tol,
                    "{} on {shape:?}: <Ax,y> = {} but <x,A^T y> = {}",
                    op.name(),
                    lhs[b],
                    rhs[b]
                );
            }
        }
    }
}

#[test]
fn shifted_solve_matches_a_dense_reference() {
    let device = common::cpu();
    for shape in [[1, 4, 4], [3, 4, 6]] {
        for op in operators(shape, &device) {
            let a = op.dense(&device).unwrap();
            let d = a.cols;
            for (c, sigma_y) in [(1.0 / 0.5f64.powi(2), 0.05), (1.0 / 4.0, 0.3), (1e-2, 1.0)] {
                let m = Mat::identity(d)
                    .scale(c)
                    .add(&a.transpose().matmul(&a).scale(1.0 / (sigma_y * sigma_y)));
                let ch = Cholesky::new(&m, "reference").unwrap();
                let mut rng = tensor::rng(7);
                let b = tensor::gaussian_vec(&mut rng, 2 * d);
                let [cc, h, w] = shape;
                let z = op.solve_shifted(c, sigma_y, tensor::from_f64(&b, [2, cc, h, w], &device));
                let z = tensor::to_f64(&z).unwrap();
                for k in 0..2 {
                    let reference = ch.solve(&b[k * d..(k + 1) * d]);
                    let err: f64 = reference
                        .iter()
                        .zip(&z[k * d..(k + 1) * d])
                        .map(|(r, v)| (r - v).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    let norm: f64 = reference.iter().map(|r| r * r).sum::<f64>().sqrt();
                    assert!(
                        err <= 2e-4 * norm.max(1e-6),
                        "{} solve (c={c}, σ_y={sigma_y}): relative error {}",
                        op.name(),
                        err / norm
                    );
                }
            }
        }
    }
}

#[test]
fn dense_matrix_agrees_with_forward() {
    let device = common::cpu();
    let shape = [3, 4, 4];
    for op in operators(shape, &device) {
        let a = op.dense(&device).unwrap();
        let mut rng = tensor::rng(3);
        let x = tensor::gaussian_vec(&mut rng, a.cols);
        let reference = a.matvec(&x);
        let got = tensor::to_f64(&op.forward(tensor::from_f64(&x, [1, 3, 4, 4], &device))).unwrap();
        for (r, g) in reference.iter().zip(&got) {
            assert!((r - g).abs() < 1e-4, "{}: {r} vs {g}", op.name());
        }
    }
}

#[test]
fn blur_matches_scipy_gaussian_filter_reflect() {
    // scipy.ndimage.gaussian_filter(np.arange(25.).reshape(5, 5), 1.0, mode="reflect") row 0,
    // the reference the operator's documentation promises.
    let device = common::cpu();
    let op = Blur::new([1, 5, 5], 1.0, &device).unwrap();
    let x: Vec<f64> = (0..25).map(f64::from).collect();
    let y = tensor::to_f64(&op.forward(tensor::from_f64(&x, [1, 1, 5, 5], &device))).unwrap();
    let scipy_row0 = [2.5622, 3.2030, 4.1352, 5.0674, 5.7082];
    for (got, want) in y.iter().zip(scipy_row0) {
        assert!((got - want).abs() < 1e-3, "blur {got} vs scipy {want}");
    }
    // gaussian_filter(np.arange(48.).reshape(3, 4, 4), (0, 0.8, 0.8), mode="reflect")[1, 2]
    let op = Blur::new([3, 4, 4], 0.8, &device).unwrap();
    let x: Vec<f64> = (0..48).map(f64::from).collect();
    let y = tensor::to_f64(&op.forward(tensor::from_f64(&x, [1, 3, 4, 4], &device))).unwrap();
    for (got, want) in y[16 + 8..16 + 12]
        .iter()
        .zip([24.2051, 24.9316, 25.886, 26.6126])
    {
        assert!((got - want).abs() < 1e-3, "blur {got} vs scipy {want}");
    }
}

#[test]
fn bad_shapes_are_refused_with_a_clear_message() {
    let device = common::cpu();
    let err = Mask::from_array([1, 4, 4], &[4, 5], vec![1.0; 20], &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("mask") && err.contains("[4, 5]"), "{err}");
    let err = Downsample::new([1, 8, 8], 3).err().unwrap().to_string();
    assert!(err.contains("factor 3"), "{err}");
    let err = MatrixOp::from_array([1, 2, 2], &[3, 5], vec![0.0; 15], &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("matrix"), "{err}");
    let err = Blur::new([1, 4, 4], -1.0, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("sigma"), "{err}");
    let err = Mask::from_array([1, 2, 2], &[2, 2], vec![1.0, f32::NAN, 0.0, 1.0], &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("non-finite"), "{err}");
}
