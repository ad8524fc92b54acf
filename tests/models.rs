//! The shipped network priors: each loads on both backends, beats the identity at every σ on
//! held-out images, and restores held-out Fashion-MNIST images through `posterior-lab sample`.

use burn::tensor::{Device, Tensor};
use posterior_lab::npy;
use posterior_lab::priors::Denoiser;
use posterior_lab::priors::network::NetworkPrior;
use posterior_lab::tensor;
use posterior_lab::train::data::ImageSet;
use posterior_lab::train::trainer;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (model folder, held-out images never used in its training)
fn shipped() -> Vec<(PathBuf, PathBuf)> {
    let mut v = vec![(
        root().join("models/fashion-mnist"),
        root().join("assets/heldout/fashion-t10k-last256.npy"),
    )];
    if root().join("models/mnist/card.ron").exists() {
        v.push((
            root().join("models/mnist"),
            root().join("assets/heldout/mnist-heldout-last100.npy"),
        ));
    }
    v
}

fn heldout(path: &Path) -> ImageSet {
    let arr = npy::read(path).unwrap();
    ImageSet {
        shape: [arr.shape[1], arr.shape[2], arr.shape[3]],
        data: arr.data,
    }
}

const SIGMAS: [f64; 10] = [0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 10.0, 80.0];

#[test]
fn shipped_models_beat_the_identity_at_every_sigma() {
    let device = Device::flex();
    for (model, data) in shipped() {
        let prior = NetworkPrior::load(&model, None, &device).unwrap();
        let set = heldout(&data);
        let rows = trainer::evaluate(&prior.model, &set, &SIGMAS, 256, 11, &device).unwrap();
        for (s, md, mi) in rows {
            eprintln!(
                "{}: σ {s:<6} MSE denoiser {md:.3e}  identity {mi:.3e}  ratio {:.3}",
                prior.card.name,
                md / mi
            );
            assert!(
                md < mi,
                "{}: at σ = {s} the denoiser ({md}) does not beat x ({mi})",
                prior.card.name
            );
        }
    }
}

#[test]
fn shipped_models_load_on_wgpu_and_agree_with_the_cpu() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if posterior_lab::backend::adapters().is_empty() {
        assert!(
            !ci,
            "CI must provide a Vulkan adapter (mesa-vulkan-drivers)"
        );
        eprintln!("skipped: no wgpu adapter");
        return;
    }
    let cpu = Device::flex();
    let gpu = Device::wgpu(Default::default());
    for (model, data) in shipped() {
        let a = NetworkPrior::load(&model, None, &cpu).unwrap();
        let b = NetworkPrior::load(&model, None, &gpu).unwrap();
        let set = heldout(&data);
        let [c, h, w] = set.shape;
        let d = c * h * w;
        let x: Vec<f32> = set.data[..4 * d].to_vec();
        let noise = tensor::gaussian_vec(&mut tensor::rng(4), 4 * d);
        let xn: Vec<f32> = x
            .iter()
            .zip(&noise)
            .map(|(x, n)| x + 0.3 * *n as f32)
            .collect();
        let out = |p: &NetworkPrior, dev: &Device| {
            tensor::to_vec(&p.denoise(tensor::from_vec(xn.clone(), [4, c, h, w], dev), 0.3))
                .unwrap()
        };
        let (ya, yb) = (out(&a, &cpu), out(&b, &gpu));
        let err = ya
            .iter()
            .zip(&yb)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{}: max |flex − wgpu| = {err:.2e}", a.card.name);
        assert!(err < 2e-3, "{}: backends disagree by {err}", a.card.name);
    }
    let _ = Tensor::<1>::zeros([1], &gpu);
}

fn sample(recipe: &str, out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    let st = Command::new(env!("CARGO_BIN_EXE_posterior-lab"))
        .args(["sample", "--quiet", "--backend", "cpu", "--recipe"])
        .arg(root().join("assets/recipes").join(recipe))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{recipe}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn psnr(x: &[f32], t: &[f32]) -> f64 {
    posterior_lab::metrics::psnr(x, t)
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pl-models-{}-{name}", std::process::id()))
}

#[test]
fn dps_box_inpainting_restores_heldout_fashion_and_variance_marks_the_box() {
    let out = scratch("inpaint");
    sample("fashion-inpaint-dps.ron", &out);
    let truth = npy::read(&out.join("truth.npy")).unwrap().data;
    let y = npy::read(&out.join("y.npy")).unwrap().data;
    let mean = npy::read(&out.join("mean.npy")).unwrap().data;
    let var = npy::read(&out.join("variance.npy")).unwrap().data;
    let mask = npy::read(&root().join("assets/recipes/mask-box-28.npy"))
        .unwrap()
        .data;
    // The naive answer: y, with the missing pixels at 0 (mid-grey).
    let naive: Vec<f32> = y.iter().zip(&mask).map(|(v, m)| v * m).collect();
    let (p_mean, p_naive) = (psnr(&mean, &truth), psnr(&naive, &truth));
    let (mut inside, mut outside, mut ni, mut no) = (0.0, 0.0, 0, 0);
    for (v, m) in var.iter().zip(&mask) {
        if *m == 0.0 {
            inside += v;
            ni += 1;
        } else {
            outside += v;
            no += 1;
        }
    }
    let (inside, outside) = (inside / ni as f32, outside / no as f32);
    eprintln!(
        "box inpainting, DPS: PSNR mean {p_mean:.2} dB vs naive {p_naive:.2} dB; variance inside {inside:.4}, outside {outside:.5}"
    );
    assert!(p_mean > p_naive + 3.0);
    assert!(inside > 5.0 * outside);
}

#[test]
fn dps_denoising_restores_heldout_fashion() {
    let out = scratch("denoise");
    sample("fashion-denoise-dps.ron", &out);
    let truth = npy::read(&out.join("truth.npy")).unwrap().data;
    let y = npy::read(&out.join("y.npy")).unwrap().data;
    let mean = npy::read(&out.join("mean.npy")).unwrap().data;
    let (p_mean, p_naive) = (psnr(&mean, &truth), psnr(&y, &truth));
    eprintln!("denoising σ_y = 0.4, DPS: PSNR mean {p_mean:.2} dB vs y {p_naive:.2} dB");
    assert!(p_mean > p_naive + 3.0);
}

#[test]
fn eps_zero_shot_runs_on_the_network_and_restores() {
    let out = scratch("eps");
    sample("fashion-inpaint-eps.ron", &out);
    let truth = npy::read(&out.join("truth.npy")).unwrap().data;
    let y = npy::read(&out.join("y.npy")).unwrap().data;
    let mean = npy::read(&out.join("mean.npy")).unwrap().data;
    let mask = npy::read(&root().join("assets/recipes/mask-box-28.npy"))
        .unwrap()
        .data;
    let naive: Vec<f32> = y.iter().zip(&mask).map(|(v, m)| v * m).collect();
    let (p_mean, p_naive) = (psnr(&mean, &truth), psnr(&naive, &truth));
    eprintln!(
        "box inpainting, EPS zero-shot 20 steps: PSNR mean {p_mean:.2} dB vs naive {p_naive:.2} dB"
    );
    assert!(p_mean > p_naive + 1.0);
}
