//! Checkpoint import against the reference code: each fixture (built by
//! tests/fixtures/checkpoints/generate.py with guided-diffusion's, the consistency models' and
//! diffusers' own networks at small widths, random weights) is imported, and its D(x, σ) must
//! match what PyTorch recorded. The importer's tensor lists must equal those of the five real
//! checkpoints at full size; bad files end in one message with nothing written.
#![allow(clippy::unwrap_used)]

mod common;

use burn::tensor::Tensor;
use posterior_lab::checkpoint::{self, ImportRequest, SourceTensor};
use posterior_lab::{npy, tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The request for a fixture case: its weights file (or folder) and config.
fn request(case: &str, name: &str) -> ImportRequest {
    let dir = fixtures().join(case);
    let weights = ["model.pt", "model.pth"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    match weights {
        Some(w) => ImportRequest {
            path: w,
            name: name.into(),
            config: Some(dir.join("config.yaml")),
            key: (case == "adm-legacy-f16").then(|| "ema".into()),
            licence: "test fixture".into(),
        },
        None => ImportRequest {
            path: dir,
            name: name.into(),
            ..Default::default()
        },
    }
}

#[derive(serde::Deserialize)]
struct Case {
    sigma: f64,
    class: Option<usize>,
}

fn cases(case: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join(case).join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

/// Imports a fixture, then compares D(x, σ) with PyTorch's at every recorded σ.
fn check_case(case: &str, device: &burn::tensor::Device) -> f64 {
    let models = temp(case);
    let dir = checkpoint::import_into(&request(case, case), &models).unwrap();
    let x = npy::read(&fixtures().join(case).join("x.npy")).unwrap();
    let d = npy::read(&fixtures().join(case).join("d.npy")).unwrap();
    let [s, b, c, h, w] = x.shape[..] else {
        panic!("x.npy shape {:?}", x.shape)
    };
    let per = b * c * h * w;
    let mut worst: f64 = 0.0;
    for (i, case_row) in cases(case).iter().enumerate().take(s) {
        let prior = posterior_lab::priors::load_model(&dir, None, case_row.class, device).unwrap();
        let xi = tensor::from_vec(
            x.data[i * per..(i + 1) * per].to_vec(),
            [b, c, h, w],
            device,
        );
        let out = prior
            .imported()
            .unwrap()
            .try_denoise(xi, case_row.sigma)
            .unwrap();
        let out = tensor::to_vec(&out).unwrap();
        let err = relative_error(&out, &d.data[i * per..(i + 1) * per]);
        eprintln!("{case}: σ {:.4}: relative error {err:.2e}", case_row.sigma);
        worst = worst.max(err);
    }
    std::fs::remove_dir_all(&models).unwrap();
    worst
}

#[test]
fn imported_checkpoints_match_pytorch_on_flex() {
    let device = common::cpu();
    for case in [
        "adm-legacy",
        "adm-legacy-f16",
        "adm-legacy-bf16",
        "adm-new-order",
        "consistency",
        "diffusers-ddpm",
    ] {
        let err = check_case(case, &device);
        assert!(err <= 1e-4, "{case}: relative error {err:.2e} > 1e-4");
    }
}

#[test]
fn imported_checkpoint_matches_pytorch_on_wgpu() {
    let Ok(sel) = posterior_lab::backend::select(Some(posterior_lab::backend::BackendKind::Wgpu))
    else {
        eprintln!("skipped: no wgpu adapter");
        return;
    };
    for case in ["adm-legacy", "consistency"] {
        let err = check_case(case, &sel.device);
        assert!(
            err <= 1e-4,
            "{case} on wgpu: relative error {err:.2e} > 1e-4"
        );
    }
}

/// The tensors (names, shapes) of a real checkpoint, as generate.py listed them at full size.
fn real(name: &str) -> Vec<SourceTensor<'static>> {
    let text = std::fs::read_to_string(fixtures().join("real-configs.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<SourceTensor> = all[name]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| SourceTensor {
            name: k.clone(),
            dtype: checkpoint::DType::F32,
            shape: v
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            data: std::borrow::Cow::Borrowed(&[]),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[test]
fn the_five_real_checkpoints_are_described_tensor_for_tensor() {
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/checkpoints");
    for name in [
        "ffhq_10m",
        "256x256_diffusion_uncond",
        "cd_imagenet64_l2",
        "cd_bedroom256_lpips",
    ] {
        let text = std::fs::read_to_string(assets.join(format!("{name}.yaml"))).unwrap();
        let d = checkpoint::adm_config::parse(&text).unwrap();
        let mut got = d.network.expected();
        got.sort();
        let mut want: Vec<(String, Vec<usize>)> = real(name)
            .into_iter()
            .map(|t| {
                let attn = t.name.ends_with(".qkv.weight") || t.name.ends_with(".proj_out.weight");
                let shape = if attn { t.shape[..2].to_vec() } else { t.shape };
                (t.name, shape)
            })
            .collect();
        want.sort();
        assert_eq!(got.len(), want.len(), "{name}: tensor count");
        assert_eq!(got, want, "{name}");
    }
    let text = std::fs::read_to_string(assets.join("ddpm-celebahq-256.json")).unwrap();
    let d = checkpoint::diffusers::parse_config(&text).unwrap();
    let (renamed, unknown) = checkpoint::diffusers::rename(real("ddpm-celebahq-256"), &d);
    assert!(
        unknown.is_empty(),
        "unplaced diffusers tensors: {unknown:?}"
    );
    let mut got: Vec<(String, Vec<usize>)> =
        renamed.into_iter().map(|t| (t.name, t.shape)).collect();
    got.sort();
    let mut want = d.network.expected();
    want.sort();
    assert_eq!(got, want, "ddpm-celebahq-256");
}

fn import_error(req: &ImportRequest) -> String {
    let models = temp(&format!("bad-{}", req.name));
    let err = checkpoint::import_into(req, &models)
        .unwrap_err()
        .to_string();
    let left: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
    assert!(
        left.is_empty(),
        "{}: something was written: {left:?}",
        req.name
    );
    std::fs::remove_dir_all(&models).unwrap();
    err
}

/// A diffusers fixture rewritten as a lone .safetensors with a change to its tensors.
fn altered_safetensors(name: &str, change: impl FnOnce(&mut Vec<SourceTensor>)) -> ImportRequest {
    let dir = fixtures().join("diffusers-ddpm");
    let bytes = std::fs::read(dir.join("diffusion_pytorch_model.safetensors")).unwrap();
    let mut tensors = checkpoint::safetensors::read(&bytes).unwrap();
    change(&mut tensors);
    let out = temp(&format!("src-{name}")).join("weights.safetensors");
    let mut f = std::fs::File::create(&out).unwrap();
    checkpoint::safetensors::write(&mut f, &tensors).unwrap();
    ImportRequest {
        path: out,
        name: name.into(),
        config: Some(dir.join("config.json")),
        ..Default::default()
    }
}

#[test]
fn bad_checkpoints_are_refused_with_one_message_and_nothing_written() {
    // Truncated: the first half of a zip checkpoint.
    let src = temp("truncated").join("model.pt");
    let bytes = std::fs::read(fixtures().join("adm-legacy/model.pt")).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
    let mut req = request("adm-legacy", "truncated");
    req.path = src;
    let e = import_error(&req);
    assert!(e.contains("truncated"), "{e}");

    // A config that does not describe the file names the first tensor that disagrees.
    let cfg = temp("cfg").join("wrong.yaml");
    let text = std::fs::read_to_string(fixtures().join("adm-legacy/config.yaml")).unwrap();
    std::fs::write(&cfg, text.replace("num_channels: 32", "num_channels: 64")).unwrap();
    let mut req = request("adm-legacy", "wrong-config");
    req.config = Some(cfg);
    let e = import_error(&req);
    assert!(
        e.contains("time_embed.0.weight") && e.contains("shape"),
        "{e}"
    );

    // An unknown config key is named.
    let cfg = temp("cfg2").join("typo.yaml");
    std::fs::write(&cfg, text.replace("num_res_blocks", "num_resblocks")).unwrap();
    let mut req = request("adm-legacy", "typo");
    req.config = Some(cfg);
    let e = import_error(&req);
    assert!(e.contains("num_resblocks"), "{e}");

    // Missing, extra and misshapen tensors.
    let e = import_error(&altered_safetensors("missing", |t| {
        t.retain(|t| t.name != "conv_out.bias")
    }));
    assert!(e.contains("out.2.bias") && e.contains("missing"), "{e}");
    let e = import_error(&altered_safetensors("extra", |t| {
        let mut x = t[0].clone();
        x.name = "surplus.weight".into();
        t.push(x);
    }));
    assert!(e.contains("surplus.weight"), "{e}");
    let e = import_error(&altered_safetensors("misshapen", |t| {
        let x = t.iter_mut().find(|t| t.name == "conv_in.weight").unwrap();
        x.shape = vec![32, 3, 9];
    }));
    assert!(
        e.contains("input_blocks.0.0.weight") && e.contains("[32, 3, 9]"),
        "{e}"
    );

    // A pickle that would call os.system is refused unread.
    let mut req = request("adm-legacy", "code");
    req.path = fixtures().join("bad/code-object.pt");
    let e = import_error(&req);
    assert!(e.contains("system") && e.contains("refused"), "{e}");

    // Nested weights without --key say which key.
    let mut req = request("adm-legacy-f16", "nested");
    req.key = None;
    let e = import_error(&req);
    assert!(e.contains("'ema'") && e.contains("--key"), "{e}");

    // A missing file.
    let mut req = request("adm-legacy", "missing-file");
    req.path = fixtures().join("nowhere.pt");
    let e = import_error(&req);
    assert!(e.contains("no such"), "{e}");
}

#[test]
fn a_checkpoint_larger_than_the_free_disk_is_refused_before_writing() {
    let models = temp("full-disk");
    let e = checkpoint::check_free_space(&models, 1 << 20, Some(1 << 19))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not enough free disk"), "{e}");
    assert!(checkpoint::check_free_space(&models, 1 << 19, Some(1 << 30)).is_ok());
    std::fs::remove_dir_all(&models).unwrap();
}

#[test]
fn legacy_torch_files_are_read() {
    let bytes = std::fs::read(fixtures().join("bad/legacy.pt")).unwrap();
    let t = checkpoint::torch_file::read(&bytes, None).unwrap();
    let a = t.iter().find(|t| t.name == "a").unwrap();
    assert_eq!(a.shape, vec![2, 3]);
    assert_eq!(a.to_f32().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // A transposed (strided) half-precision view is gathered in its logical order.
    let b = t.iter().find(|t| t.name == "b").unwrap();
    assert_eq!(b.to_f32().unwrap(), vec![0.0, 2.0, 1.0, 3.0]);
}

#[test]
fn class_conditional_models_need_a_valid_class() {
    let device = common::cpu();
    let models = temp("classes");
    let dir = checkpoint::import_into(&request("adm-new-order", "cond"), &models).unwrap();
    let load = |class| posterior_lab::priors::load_model(&dir, None, class, &device);
    let e = load(None).err().unwrap().to_string();
    assert!(
        e.contains("class-conditional") && e.contains("class"),
        "{e}"
    );
    let e = load(Some(1000)).err().unwrap().to_string();
    assert!(e.contains("1000"), "{e}");
    assert!(load(Some(7)).is_ok());
    std::fs::remove_dir_all(&models).unwrap();
}

#[test]
fn the_imported_denoiser_differentiates_like_finite_differences() {
    let device = common::cpu();
    let models = temp("vjp");
    let dir = checkpoint::import_into(&request("diffusers-ddpm", "vjp"), &models).unwrap();
    let prior = posterior_lab::priors::load_model(&dir, None, None, &device).unwrap();
    let mut rng = tensor::rng(5);
    let x = tensor::normal(&mut rng, [1, 3, 16, 16], &device).mul_scalar(0.5);
    let v = tensor::normal(&mut rng, [1, 3, 16, 16], &device);
    let sigma = 0.3;
    let loss = |t: Tensor<4>| (prior.denoise(t, sigma) * v.clone()).sum();
    let xa = x.clone().autodiff().require_grad();
    let grads = loss(xa.clone()).backward();
    let g = xa.grad(&grads).unwrap().without_autodiff();
    let dir_t = tensor::normal(&mut rng, [1, 3, 16, 16], &device);
    let f = |t: Tensor<4>| f64::from(tensor::to_vec(&loss(t)).unwrap()[0]);
    // The random-weight network is far from linear: a small step (converged to 3 digits:
    // 1e-2 gives -1.969, 3e-3 -2.024, 1e-3 -2.030 against autodiff's -2.031).
    let eps = 1e-3;
    let fd = (f(x.clone() + dir_t.clone().mul_scalar(eps)) - f(x - dir_t.clone().mul_scalar(eps)))
        / (2.0 * eps);
    let an = f64::from(tensor::to_vec(&(g * dir_t).sum()).unwrap()[0]);
    assert!(
        (fd - an).abs() <= 1e-2 * an.abs().max(1.0),
        "finite differences {fd}, autodiff {an}"
    );
    std::fs::remove_dir_all(&models).unwrap();
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_posterior-lab"))
}

#[test]
fn the_command_line_imports_by_name_and_denoises_from_any_folder() {
    let home = temp("cli-home");
    let elsewhere = temp("cli-cwd");
    let case = fixtures().join("adm-legacy");
    let run = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .env("XDG_DATA_HOME", &home)
            .env("HOME", &home)
            .env_remove("POSTERIOR_LAB_MODELS")
            .current_dir(&elsewhere)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run(&[
        "models",
        "--import-checkpoint",
        case.join("model.pt").to_str().unwrap(),
        "--name",
        "tiny-adm",
        "--config",
        case.join("config.yaml").to_str().unwrap(),
        "--licence",
        "MIT (test fixture)",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["models"]);
    assert!(ok && text.contains("tiny-adm"), "{text}");
    // Importing the same name twice is refused.
    let (ok, text) = run(&[
        "models",
        "--import-checkpoint",
        case.join("model.pt").to_str().unwrap(),
        "--name",
        "tiny-adm",
        "--config",
        case.join("config.yaml").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("already"), "{text}");

    let x = npy::read(&case.join("x.npy")).unwrap();
    let d = npy::read(&case.join("d.npy")).unwrap();
    let row = &cases("adm-legacy")[2];
    let per: usize = x.shape[1..].iter().product();
    let input = elsewhere.join("in.npy");
    npy::write(&input, &x.shape[1..], &x.data[2 * per..3 * per]).unwrap();
    let (ok, text) = run(&[
        "denoise",
        "--backend",
        "cpu",
        "--model",
        "tiny-adm",
        "--sigma",
        &format!("{}", row.sigma),
        "in.npy",
        "out.npy",
    ]);
    assert!(ok, "{text}");
    let out = npy::read(&elsewhere.join("out.npy")).unwrap();
    let err = relative_error(&out.data, &d.data[2 * per..3 * per]);
    assert!(err <= 1e-4, "denoise: relative error {err:.2e}");

    // A shipped model too, and one clear message for a bad σ.
    let (ok, text) = run(&[
        "denoise", "--model", "tiny-adm", "--sigma", "-1", "in.npy", "o.npy",
    ]);
    assert!(!ok && text.contains("--sigma"), "{text}");
    assert!(!Path::new(&elsewhere.join("o.npy")).exists());
    std::fs::remove_dir_all(&home).unwrap();
    std::fs::remove_dir_all(&elsewhere).unwrap();
}

#[test]
fn a_consistency_model_samples_through_noise_space_langevin_and_is_no_denoiser() {
    use posterior_lab::operators::Downsample;
    use posterior_lab::problem::Problem;
    use posterior_lab::samplers::{self, SamplerSpec};
    use std::sync::Arc;
    let device = common::cpu();
    let models = temp("cm");
    let dir = checkpoint::import_into(&request("consistency", "cm"), &models).unwrap();
    // 24×32: larger than the network's 16², so Φ runs in tiles.
    let shape = [3, 24, 32];
    let prior = posterior_lab::priors::load_model(&dir, Some(shape), Some(207), &device).unwrap();
    assert!(prior.generator_only() && prior.generator().is_some_and(|g| g.cold()));
    let op = Downsample::new(shape, 2).unwrap();
    let x = tensor::normal(&mut tensor::rng(3), [1, 3, 24, 32], &device).mul_scalar(0.3);
    let y = posterior_lab::operators::Operator::forward(&op, x);
    let problem = Problem::new(prior, Arc::new(op), y, 0.05, device).unwrap();
    let run = |line: &str| -> Result<(), String> {
        let spec: SamplerSpec = samplers::parse(line).unwrap();
        let mut s = samplers::build(&spec, &problem, 2, 1).map_err(|e| e.to_string())?;
        samplers::run(s.as_mut(), &problem, |_| {}).map_err(|e| e.to_string())?;
        Ok(())
    };
    run("NoiseSpaceLangevin(steps: 3, warmup: 2)").unwrap();
    run("Auto()").unwrap();
    let e = run("Dps(steps: 5)").unwrap_err();
    assert!(
        e.contains("one-step generator") && e.contains("NoiseSpaceLangevin"),
        "{e}"
    );
    let e = run("NoiseSpaceLangevin(steps: 3, generator: Ode)").unwrap_err();
    assert!(e.contains("generator: Auto"), "{e}");
    std::fs::remove_dir_all(&models).unwrap();
}

/// The CPU path's pullback equals burn autodiff's through the same network (both on flex), on
/// a picture larger than the network (tiles), for the legacy-order scale-shift fixture and the
/// class-conditional new-order one.
#[test]
fn the_cpu_pullback_equals_autodiff() {
    let device = common::cpu();
    for (case, class) in [("adm-legacy", None), ("adm-new-order", Some(7))] {
        let models = temp(&format!("pull-{case}"));
        let dir = checkpoint::import_into(&request(case, case), &models).unwrap();
        let prior =
            posterior_lab::priors::load_model(&dir, Some([3, 24, 20]), class, &device).unwrap();
        let mut rng = tensor::rng(8);
        let x = tensor::normal(&mut rng, [2, 3, 24, 20], &device).mul_scalar(0.6);
        let v = tensor::normal(&mut rng, [2, 3, 24, 20], &device);
        for sigma in [0.05, 0.7, 6.0] {
            let (d, pullback) = prior
                .denoise_vjp(&x, sigma)
                .expect("a CPU pullback on flex");
            let fast = tensor::to_vec(&pullback(v.clone()).unwrap()).unwrap();
            let xa = x.clone().autodiff().require_grad();
            let out = prior.denoise(xa.clone(), sigma);
            let grads = (out.clone() * v.clone()).sum().backward();
            let slow = tensor::to_vec(&xa.grad(&grads).unwrap()).unwrap();
            let d_slow = tensor::to_vec(&out.detach().without_autodiff()).unwrap();
            let d_fast = tensor::to_vec(&d).unwrap();
            let (ed, eg) = (
                relative_error(&d_fast, &d_slow),
                relative_error(&fast, &slow),
            );
            eprintln!("{case} σ {sigma}: D {ed:.2e}, VJP {eg:.2e}");
            assert!(
                ed <= 1e-5 && eg <= 1e-4,
                "{case} σ {sigma}: D {ed:.2e}, VJP {eg:.2e}"
            );
        }
        std::fs::remove_dir_all(&models).unwrap();
    }
}
