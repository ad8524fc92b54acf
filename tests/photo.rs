//! Photos at their own size: tiles without seams, the tiled pullback against autodiff, the
//! banded blur at photo size, `Auto`'s choices, and true upscaling of a real low-resolution y.
#![allow(clippy::unwrap_used)]

use burn::tensor::{Device, Tensor};
use posterior_lab::operators::{Blur, Operator};
use posterior_lab::priors::{Denoiser, NetworkPrior, Tiling};
use posterior_lab::{metrics, npy, tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn photo_prior(shape: [usize; 3], tiling: Option<Tiling>) -> NetworkPrior {
    NetworkPrior::load(&root().join("models/photo"), Some(shape), &Device::flex())
        .unwrap()
        .with_tiling(tiling)
}

/// How much the error profile (averaged down the columns) jumps at the tiles' edges on average,
/// relative to how much it moves between neighbouring columns elsewhere: about 1 without a
/// grid, a visible tile grid is a jump well above the rest.
fn seam_ratio(err: &[f32], [c, h, w]: [usize; 3], seams: &[usize]) -> f64 {
    let mut profile = vec![0.0f64; w];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                profile[x] += f64::from(err[(ch * h + y) * w + x]) / (c * h) as f64;
            }
        }
    }
    let jumps: Vec<f64> = (1..w)
        .map(|x| (profile[x] - profile[x - 1]).abs())
        .collect();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let at_seams = mean(seams.iter().map(|s| jumps[s - 1]).collect());
    let rest = mean(
        (1..w)
            .filter(|x| !seams.contains(x))
            .map(|x| jumps[x - 1])
            .collect(),
    );
    at_seams / rest.max(1e-9)
}

#[test]
fn tiles_leave_no_grid_on_a_constant_and_a_ramp() {
    let (h, w) = (96, 176);
    let shape = [3, h, w];
    let device = Device::flex();
    let constant = vec![0.2f32; 3 * h * w];
    let ramp: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i % w) as f32 / w as f32 - 0.5) + ((i / w) % h) as f32 / h as f32 * 0.3)
        .collect();
    let blended = Tiling::default();
    // The same tiles without the cross-fade: the grid the blend must remove.
    let hard = Tiling {
        tile: blended.tile,
        overlap: 0,
    };
    for (name, truth) in [("constant", constant), ("ramp", ramp)] {
        for sigma in [0.05, 0.5] {
            let noise = tensor::normal(&mut tensor::rng(5), [1, 3, h, w], &device);
            let x =
                tensor::from_vec(truth.clone(), [1, 3, h, w], &device) + noise.mul_scalar(sigma);
            let mut ratios = vec![];
            for tiling in [blended, hard] {
                let prior = photo_prior(shape, Some(tiling));
                let d = tensor::to_vec(&prior.denoise(x.clone(), sigma)).unwrap();
                let err: Vec<f32> = d.iter().zip(&truth).map(|(a, b)| a - b).collect();
                let plan = tiling.plan(h, w).unwrap();
                // With the cross-fade the transition is spread over the overlap: look at the
                // tiles' starts and at the ends of their ramps.
                let (_, xs) = plan.starts();
                let seams: Vec<usize> = xs
                    .iter()
                    .flat_map(|s| [*s, s + tiling.overlap, s + plan.tile_shape()[1]])
                    .filter(|s| *s > 0 && *s < w)
                    .collect();
                ratios.push(seam_ratio(&err, shape, &seams));
            }
            eprintln!(
                "{name}, σ {sigma}: seam jump / typical jump: blended {:.2}, hard tiles {:.2}",
                ratios[0], ratios[1]
            );
            assert!(
                ratios[0] < 2.0,
                "{name} σ {sigma}: a tile grid shows ({:.2})",
                ratios[0]
            );
            assert!(
                ratios[1] > 1.5 * ratios[0],
                "{name} σ {sigma}: the check cannot see seams"
            );
        }
    }
}

/// The host pullback through the tiles (the CPU path DPS and ΠGDM take) equals burn's autodiff
/// through the same tiles, and the tiled denoiser equals the graph version.
#[test]
fn the_tiled_pullback_is_the_autodiff_gradient() {
    let (h, w) = (64, 80);
    let prior = photo_prior(
        [3, h, w],
        Some(Tiling {
            tile: 32,
            overlap: 8,
        }),
    );
    let device = Device::flex();
    let mut rng = tensor::rng(8);
    let x = tensor::normal(&mut rng, [2, 3, h, w], &device).mul_scalar(0.5);
    let v = tensor::normal(&mut rng, [2, 3, h, w], &device);
    let sigma = 0.3;
    let (d, pb) = prior.denoise_vjp(&x, sigma).unwrap();
    let g = tensor::to_vec(&pb(v.clone()).unwrap()).unwrap();
    let xa: Tensor<4> = x.clone().autodiff().require_grad();
    let da = prior.denoise(xa.clone(), sigma);
    let loss = (da.clone() * v.autodiff()).sum();
    let grads = loss.backward();
    let ga = tensor::to_vec(&xa.grad(&grads).unwrap()).unwrap();
    let (d, da) = (
        tensor::to_vec(&d).unwrap(),
        tensor::to_vec(&da.detach().without_autodiff()).unwrap(),
    );
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max)
    };
    let scale = ga.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    eprintln!(
        "tiled D: host vs graph {:.2e}; pullback vs autodiff {:.2e} (gradient scale {scale:.2})",
        max_diff(&d, &da),
        max_diff(&g, &ga)
    );
    assert!(max_diff(&d, &da) < 1e-4);
    assert!(max_diff(&g, &ga) < 1e-3 * scale.max(1.0));
}

/// ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for the banded blur at a photo's size (no H×H matrix is built).
#[test]
fn the_blur_is_banded_and_exactly_adjoint_at_photo_size() {
    let device = Device::flex();
    let shape = [3, 768, 1024];
    let op = Blur::new(shape, 2.0, &device).unwrap();
    let mut rng = tensor::rng(4);
    let x = tensor::normal(&mut rng, [1, 3, 768, 1024], &device);
    let y = tensor::normal(&mut rng, [1, 3, 768, 1024], &device);
    let lhs = tensor::to_f64(&tensor::inner(op.forward(x.clone()), y.clone())).unwrap()[0];
    let rhs = tensor::to_f64(&tensor::inner(x, op.adjoint(y))).unwrap()[0];
    assert!(
        (lhs - rhs).abs() < 1e-4 * lhs.abs().max(rhs.abs()).max(1.0),
        "{lhs} vs {rhs}"
    );
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_posterior-lab"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pl-photo-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sample(recipe: &Path, out: &Path) -> String {
    let status = bin()
        .args(["sample", "--quiet", "--backend", "cpu", "--recipe"])
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read_to_string(out.join("summary.ron")).unwrap()
}

/// `sampler: Auto` (the bare word) runs the table's line and the summary says which.
#[test]
fn auto_runs_the_tested_preset_and_says_which() {
    let dir = scratch("auto");
    let gmm = root().join("assets/recipes/gmm-8x8.ron");
    let mask: Vec<f32> = (0..64)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 })
        .collect();
    npy::write(&dir.join("mask.npy"), &[8, 8], &mask).unwrap();
    let truth: Vec<f32> = (0..64).map(|i| (i as f32 / 32.0) - 1.0).collect();
    npy::write(&dir.join("x.npy"), &[1, 8, 8], &truth).unwrap();
    let recipe = dir.join("auto.ron");
    std::fs::write(
        &recipe,
        format!(
            "(prior: Gmm({:?}), shape: (1, 8, 8), operator: Mask(\"mask.npy\"),\n measurement: Simulate(truth: Npy(\"x.npy\")), noise_sigma: 0.1,\n sampler: Auto, chains: 8, seed: 2)",
            gmm.display().to_string()
        ),
    )
    .unwrap();
    let summary = sample(&recipe, &dir.join("out"));
    assert!(summary.contains("sampler: \"Exact\""), "{summary}");
    assert!(
        summary
            .contains("Auto(speed: Balanced) chose Exact for inpainting with a Gaussian mixture"),
        "{summary}"
    );
    // A network prior: the Fashion-MNIST prior with its EPS fine-tune for masks at σ_y 0.05.
    let fashion = root().join("assets/recipes/fashion-inpaint-dps.ron");
    let text = std::fs::read_to_string(&fashion).unwrap();
    let auto = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("sampler:") {
                "    sampler: Auto(speed: Fast),".to_string()
            } else if l.trim_start().starts_with("chains:") {
                "    chains: 2,".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let recipe = root()
        .join("assets/recipes")
        .join(format!("auto-test-{}.ron", std::process::id()));
    std::fs::write(&recipe, auto).unwrap();
    let out = dir.join("fashion");
    let status = bin()
        .args(["sample", "--quiet", "--backend", "cpu", "--recipe"])
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&recipe);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.ron")).unwrap();
    assert!(
        summary.contains("Auto(speed: Fast) chose Eps(steps: 10) for inpainting"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The batch template (assets/recipes/photo-batch-sr.ron) with the photo prior's absolute path,
/// `Auto(speed: Fast)`, 2 chains and the given operator, written into `dir`.
fn batch_template(dir: &Path, operator: &str) -> PathBuf {
    let template = dir.join("template.ron");
    let text = std::fs::read_to_string(root().join("assets/recipes/photo-batch-sr.ron"))
        .unwrap()
        .replace(
            "../../models/photo",
            &root().join("models/photo").display().to_string(),
        )
        .replace("Downsample(2)", operator)
        .replace("sampler: Auto,", "sampler: Auto(speed: Fast),")
        .replace("chains: 4,", "chains: 2,");
    std::fs::write(&template, text).unwrap();
    template
}

/// `posterior-lab batch` on the CPU.
fn run_batch(template: &Path, input: &Path, out: &Path, simulate: bool) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["batch", "--quiet", "--backend", "cpu", "--recipe"])
        .arg(template)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out);
    if simulate {
        cmd.arg("--simulate");
    }
    cmd.output().unwrap()
}

/// `batch` restores every picture of a folder: a real small picture comes back twice as large
/// (true upscaling), a broken one is reported by name while the others still run, and with
/// --simulate the table has each picture's PSNR.
#[test]
fn a_folder_of_pictures_is_restored_as_a_batch() {
    let dir = scratch("batch");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["fashion-bag.png", "fashion-boot.png"] {
        std::fs::copy(root().join("assets/gallery").join(name), input.join(name)).unwrap();
    }
    std::fs::write(input.join("broken.jpg"), b"not a picture").unwrap();
    let template = batch_template(&dir, "Downsample(2)");
    let run = |simulate: bool, out: &Path| run_batch(&template, &input, out, simulate);
    let out = dir.join("real");
    let o = run(false, &out);
    assert!(
        !o.status.success(),
        "one picture is broken: the batch says so"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 of 3 pictures failed"), "{err}");
    let table = std::fs::read_to_string(out.join("batch.md")).unwrap();
    assert!(
        table.contains("broken.jpg") && table.contains("failed"),
        "{table}"
    );
    for stem in ["fashion-bag", "fashion-boot"] {
        let mean = npy::read(&out.join(stem).join("result/mean.npy")).unwrap();
        assert_eq!(mean.shape, vec![3, 56, 56], "{stem}: 28×28 upscaled twice");
        let y = npy::read(&out.join(stem).join("result/y.npy"))
            .unwrap_or_else(|_| npy::read(&out.join(stem).join("input/y.npy")).unwrap());
        assert_eq!(y.shape, vec![3, 28, 28], "{stem}: the picture itself is y");
    }
    std::fs::remove_file(input.join("broken.jpg")).unwrap();
    let out = dir.join("simulated");
    let o = run(true, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(out.join("batch.md")).unwrap();
    let psnrs: Vec<f64> = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(6).and_then(|c| c.trim().parse().ok()))
        .collect();
    assert_eq!(psnrs.len(), 2, "{table}");
    assert!(psnrs.iter().all(|p| *p > 15.0), "{table}");
    let mean = npy::read(&out.join("fashion-bag/result/mean.npy")).unwrap();
    assert_eq!(
        mean.shape,
        vec![3, 28, 28],
        "simulated: restored at the picture's size"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real photo to colourise in `batch`: y is its grey (the channel mean, the operator's own A),
/// and the colour restoration agrees with it.
#[test]
fn batch_colourises_a_real_grey_photo() {
    let dir = scratch("batch-grey");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let photo = image::open(root().join("assets/demo/coffee.jpg")).unwrap();
    let grey = photo
        .resize_exact(40, 32, image::imageops::FilterType::Triangle)
        .to_luma8();
    grey.save(input.join("grey.png")).unwrap();
    let out = dir.join("out");
    let o = run_batch(&batch_template(&dir, "Grayscale"), &input, &out, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = npy::read(&out.join("grey/input/y.npy")).unwrap();
    assert_eq!(y.shape, vec![1, 32, 40], "y is the grey picture");
    let want: Vec<f32> = grey.pixels().map(|p| p.0[0] as f32 / 127.5 - 1.0).collect();
    let d = y
        .data
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d < 1e-5, "y is the photo's grey: {d}");
    let mean = npy::read(&out.join("grey/result/mean.npy")).unwrap();
    assert_eq!(mean.shape, vec![3, 32, 40], "restored in colour");
    // The restoration's grey is y (σ_y 0.02): root mean square well under 0.1.
    let plane = 32 * 40;
    let rms = ((0..plane)
        .map(|i| {
            let g = (0..3).map(|k| mean.data[k * plane + i]).sum::<f32>() / 3.0;
            ((g - y.data[i]) as f64).powi(2)
        })
        .sum::<f64>()
        / plane as f64)
        .sqrt();
    assert!(rms < 0.1, "the colours keep the grey: rms {rms}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The warm one-step generator (`models/photo-cm`, distilled up to σ 2 from `photo`) drives
/// noise-space Langevin on a held-out photo with the window's patch-prior preset: one network
/// call per step, and the mean of four chains fills scratches and blots better than Gaussian
/// interpolation (from σ_max, without a warm start, the method falls 9 dB below it).
#[test]
fn noise_space_langevin_fills_scratches_with_the_warm_one_step_generator() {
    use posterior_lab::operators::Mask;
    use posterior_lab::problem::Problem;
    use posterior_lab::{photo, samplers};
    use std::sync::Arc;
    let device = Device::flex();
    let n = 64;
    let shape = [3, n, n];
    let prior = Arc::new(photo_prior(shape, None));
    assert!(
        prior
            .generator()
            .is_some_and(|g| !g.cold() && g.top() >= 0.5),
        "models/photo-cm (a warm generator) beside models/photo"
    );
    let bytes = std::fs::read(root().join("assets/demo/picosdeeuropa.jpg")).unwrap();
    let truth = photo::square_crop(&bytes, "picosdeeuropa", n).unwrap().data;
    let mask = photo::scratches(n, n, 0.1, 7);
    let op = Arc::new(Mask::from_array(shape, &[n, n], mask.clone(), &device).unwrap());
    let clean = op.forward(tensor::from_vec(truth.clone(), [1, 3, n, n], &device));
    let noise = tensor::normal(&mut tensor::rng(4), clean.dims(), &device);
    let y = clean + noise.mul_scalar(0.02);
    let baseline = photo::interpolate_holes(&tensor::to_vec(&y).unwrap(), &mask, shape, 2.0);
    let problem = Problem::new(prior, op, y, 0.02, device).unwrap();
    let info = samplers::info("NoiseSpaceLangevin").unwrap();
    let spec = samplers::parse(info.preset_for(true)).unwrap();
    let mut s = samplers::build(&spec, &problem, 4, 1).unwrap();
    samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
    let detail = s.detail().unwrap_or_default();
    assert!(detail.contains("distilled"), "{detail}");
    assert_eq!(
        s.state().nfe,
        s.state().total_steps + 1,
        "one call per step"
    );
    let (mean, _) =
        posterior_lab::metrics::mean_variance(&tensor::to_vec(&s.samples()).unwrap(), 4);
    let psnr = |x: &[f32]| posterior_lab::metrics::psnr(x, &truth);
    let (ours, base) = (psnr(&mean), psnr(&baseline.unwrap()));
    eprintln!(
        "scratches on a 64² photo: NSL with the warm generator {ours:.2} dB, interpolation {base:.2} dB"
    );
    assert!(ours > base + 0.5, "{ours:.2} dB against {base:.2} dB");
}

/// `Auto` on the stronger photo prior with its GPU-trained EPS fine-tune (`models/photo64-eps`)
/// runs `Eps(steps: 5)` through the fine-tune for 2× super-resolution, and the mean of four
/// chains beats bicubic on 96² crops of three held-out photos by more than 1 dB on average (at
/// 256² it gains +1.61 dB over nine photos: docs/photo-table.md). The same run through the
/// unconditioned prior (zero-shot EPS) must not do as well: the fine-tune is what gains.
#[test]
fn auto_super_resolves_photos_through_the_gpu_trained_fine_tune() {
    use posterior_lab::operators::Downsample;
    use posterior_lab::problem::Problem;
    use posterior_lab::{photo, samplers};
    use std::sync::Arc;
    let device = Device::flex();
    let n = 96;
    let shape = [3, n, n];
    let prior =
        Arc::new(NetworkPrior::load(&root().join("models/photo64"), Some(shape), &device).unwrap());
    let op = Arc::new(Downsample::new(shape, 2).unwrap());
    assert!(
        prior.eps_denoiser(op.as_ref(), 0.02).is_some(),
        "photo64-eps"
    );
    let (mut gain, mut over_zero_shot) = (0.0, 0.0);
    let photos = ["coffee", "astronaut", "flower"];
    for (i, name) in photos.iter().enumerate() {
        let bytes = std::fs::read(root().join(format!("assets/demo/{name}.jpg"))).unwrap();
        let truth = photo::square_crop(&bytes, name, n).unwrap().data;
        let clean = op.forward(tensor::from_vec(truth.clone(), [1, 3, n, n], &device));
        let noise = tensor::normal(&mut tensor::rng(30 + i as u64), clean.dims(), &device);
        let y = clean + noise.mul_scalar(0.02);
        let bicubic = photo::bicubic(&tensor::to_vec(&y).unwrap(), [3, n / 2, n / 2], 2);
        let problem = Problem::new(prior.clone(), op.clone(), y, 0.02, device.clone()).unwrap();
        let mean_psnr = |line: &str| {
            let spec = samplers::parse(line).unwrap();
            let mut s = samplers::build(&spec, &problem, 4, i as u64).unwrap();
            samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
            let samples = tensor::to_vec(&s.samples()).unwrap();
            let (mean, _) = posterior_lab::metrics::mean_variance(&samples, 4);
            let detail = s.detail().unwrap_or_default();
            (posterior_lab::metrics::psnr(&mean, &truth), detail)
        };
        let (auto, detail) = mean_psnr("Auto");
        assert!(
            detail.contains("chose Eps(steps: 5)") && detail.contains("FineTuned"),
            "{detail}"
        );
        let (zero, _) = mean_psnr("Eps(steps: 5, mode: ZeroShot)");
        let base = posterior_lab::metrics::psnr(&bicubic, &truth);
        eprintln!(
            "2x SR, {name} {n}²: Auto {auto:.2} dB, zero-shot EPS 5 {zero:.2} dB, bicubic {base:.2} dB"
        );
        gain += (auto - base) / photos.len() as f64;
        over_zero_shot += (auto - zero) / photos.len() as f64;
    }
    assert!(
        gain > 1.0,
        "Auto gains {gain:.2} dB over bicubic on average"
    );
    assert!(
        over_zero_shot > 0.5,
        "the fine-tune gains {over_zero_shot:.2} dB"
    );
}

/// DDRM on a large photo with a few holes evaluates the prior only on the tiles that hold a
/// hole while σ is above σ_y (exact there: DDRM uses D(x) only in the holes then), once on
/// the whole picture at the first step below σ_y, and afterwards near the holes only. Its
/// result equals the whole-picture run of the same seed within the tolerance measured here
/// (docs/photo-table.md), and it does a fraction of the work.
#[test]
fn ddrm_restores_only_the_damaged_tiles_and_matches_the_whole_picture_run() {
    use posterior_lab::operators::Mask;
    use posterior_lab::problem::Problem;
    use posterior_lab::{metrics, photo, samplers};
    use std::sync::Arc;
    let device = Device::flex();
    let bytes = std::fs::read(root().join("assets/demo/chelsea.jpg")).unwrap();
    let truth = photo::fit(&bytes, Path::new("chelsea"), 3, 240, 4)
        .unwrap()
        .0;
    let shape = truth.shape;
    let [_, h, w] = shape;
    assert!(h >= 144 && w >= 200, "{shape:?}");
    let prior = Arc::new(photo_prior(shape, Some(Tiling::default())));
    // Two blots and a short scratch in the left half: the right half has no hole.
    let mut mask = vec![1.0f32; h * w];
    for (cy, cx, r) in [(40.0, 50.0, 9.0), (100.0, 90.0, 6.0)] {
        for y in 0..h {
            for x in 0..w {
                let (dy, dx) = (y as f64 - cy, x as f64 - cx);
                if dy * dy + dx * dx <= r * r {
                    mask[y * w + x] = 0.0;
                }
            }
        }
    }
    for x in 20..70 {
        mask[120 * w + x] = 0.0;
        mask[121 * w + x] = 0.0;
    }
    let op = Arc::new(Mask::from_array(shape, &[h, w], mask.clone(), &device).unwrap());
    let x = tensor::from_vec(truth.data.clone(), [1, 3, h, w], &device);
    let y = posterior_lab::recipe::simulate_y(op.as_ref(), x, 0.02, 1);
    let problem = Problem::new(prior, op, y, 0.02, device).unwrap();
    let run = |line: &str| {
        let spec = samplers::parse(line).unwrap();
        let mut s = samplers::build(&spec, &problem, 2, 5).unwrap();
        samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
        let out = tensor::to_vec(&s.samples()).unwrap();
        (out, s.detail().unwrap_or_default())
    };
    let (part, detail) = run("Ddrm(steps: 12, warm: 0.5)");
    let (whole, whole_detail) = run("Ddrm(steps: 12, warm: 0.5, whole_picture: true)");
    assert!(!whole_detail.contains("tiles"), "{whole_detail}");
    let share: f64 = detail
        .split("evaluated on ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no share of work in '{detail}'"));
    assert!(share < 60.0, "{detail}");
    // Where the chains differ: inside the holes, and anywhere.
    let d = h * w;
    let (mut hole_sq, mut holes, mut max_diff) = (0.0f64, 0usize, 0.0f32);
    for (i, (a, b)) in part.iter().zip(&whole).enumerate() {
        let diff = (a - b).abs();
        max_diff = max_diff.max(diff);
        if mask[i % d] == 0.0 {
            hole_sq += f64::from(diff * diff);
            holes += 1;
        }
    }
    let hole_rms = (hole_sq / holes as f64).sqrt();
    let (pm, _) = metrics::mean_variance(&part, 2);
    let (wm, _) = metrics::mean_variance(&whole, 2);
    let (p_part, p_whole) = (
        metrics::psnr(&pm, &truth.data),
        metrics::psnr(&wm, &truth.data),
    );
    eprintln!(
        "damage only: {share:.0}% of the work; RMS difference in the holes {hole_rms:.4}, largest \
         anywhere {max_diff:.4}; PSNR {p_part:.2} against {p_whole:.2} dB"
    );
    assert!(hole_rms < 0.01, "holes differ by {hole_rms}");
    assert!(max_diff < 0.1, "largest difference {max_diff}");
    assert!((p_part - p_whole).abs() < 0.05, "{p_part} vs {p_whole}");
}

/// The bare DPS preset (`Dps(steps: 200)`, ζ left to its default) on a 64² crop of a held-out
/// photo beats the naive answer for 2× super-resolution and for scratches: the default ζ is the
/// one measured on photo priors (3.0 at σ_y 0.02), not Fashion-MNIST's 0.3, which lost 3–7 dB
/// here (docs/sampler-table.md).
#[test]
fn bare_dps_beats_the_naive_answer_on_a_photo_crop() {
    use posterior_lab::operators::{Downsample, Mask};
    use posterior_lab::problem::Problem;
    use posterior_lab::{metrics, photo, samplers};
    use std::sync::Arc;
    let device = Device::flex();
    let n = 64;
    let shape = [3, n, n];
    let prior = Arc::new(photo_prior(shape, Some(Tiling::default())));
    let bytes = std::fs::read(root().join("assets/demo/picosdeeuropa.jpg")).unwrap();
    let truth = photo::square_crop(&bytes, "picosdeeuropa", n).unwrap().data;
    let x = tensor::from_vec(truth.clone(), [1, 3, n, n], &device);
    let mask = photo::scratches(n, n, 0.1, 7);
    let cases: Vec<(&str, Arc<dyn Operator>)> = vec![
        (
            "2× super-resolution",
            Arc::new(Downsample::new(shape, 2).unwrap()),
        ),
        (
            "scratches",
            Arc::new(Mask::from_array(shape, &[n, n], mask.clone(), &device).unwrap()),
        ),
    ];
    let spec = samplers::parse(samplers::info("Dps").unwrap().preset).unwrap();
    for (name, op) in cases {
        let y = posterior_lab::recipe::simulate_y(op.as_ref(), x.clone(), 0.02, 1);
        let yv = tensor::to_vec(&y).unwrap();
        let naive = if name == "scratches" {
            photo::interpolate_holes(&yv, &mask, shape, 2.0).unwrap()
        } else {
            photo::bicubic(&yv, [3, n / 2, n / 2], 2)
        };
        let problem = Problem::new(prior.clone(), op, y, 0.02, device.clone()).unwrap();
        let mut s = samplers::build(&spec, &problem, 4, 3).unwrap();
        samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
        let (mean, _) = metrics::mean_variance(&tensor::to_vec(&s.samples()).unwrap(), 4);
        let (ours, base) = (metrics::psnr(&mean, &truth), metrics::psnr(&naive, &truth));
        eprintln!(
            "{name}: bare DPS ({}) {ours:.2} dB, naive {base:.2} dB",
            s.detail().unwrap_or_default()
        );
        assert!(ours > base, "{name}: {ours:.2} dB against {base:.2} dB");
    }
}

/// The two aims of `Auto` on a 44×36 box in a demo photo (never trained on): the best mean's
/// chains nearly agree, the diverse ones differ more inside the box, each with more of a
/// photo's fine detail there, while both means stay above the zero fill. Measured: the chains'
/// variance is 0.030 and 0.064 of the mean's squared error in the box, their detail 0.060 and
/// 0.096 of the truth's (the box is wider than the prior's patches: its centre is guessed),
/// both means +3.1 dB over the zero fill.
#[test]
fn diverse_samples_differ_in_the_hole_and_keep_their_detail() {
    let mask = npy::read(&root().join("assets/recipes/mask-box-96x144.npy"))
        .unwrap()
        .data;
    let region: Vec<f32> = mask.iter().map(|m| 1.0 - m).collect();
    let shape = [3, 96, 144];
    let mut figures = vec![];
    for aim in ["mean", "diverse"] {
        let out = scratch(&format!("box-{aim}"));
        let summary = sample(
            &root().join(format!("assets/recipes/photo-box-{aim}.ron")),
            &out,
        );
        let truth = npy::read(&out.join("truth.npy")).unwrap().data;
        let mean = npy::read(&out.join("mean.npy")).unwrap().data;
        let samples = npy::read(&out.join("samples.npy")).unwrap().data;
        let var = npy::read(&out.join("variance.npy")).unwrap().data;
        let d = truth.len();
        let hole = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .enumerate()
                .filter(|(i, _)| region[i % (96 * 144)] > 0.5)
                .map(|(_, x)| *x)
                .collect()
        };
        let err: f64 = (hole(&mean).iter().zip(hole(&truth)))
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        let spread: f64 = hole(&var).iter().map(|v| f64::from(*v)).sum();
        let detail = samples
            .chunks(d)
            .map(|c| metrics::detail_ratio(c, &truth, shape, Some(&region)))
            .sum::<f64>()
            / 4.0;
        let zero: Vec<f32> = (0..d)
            .map(|i| {
                if region[i % (96 * 144)] > 0.5 {
                    0.0
                } else {
                    truth[i]
                }
            })
            .collect();
        let (p, p_zero) = (metrics::psnr(&mean, &truth), metrics::psnr(&zero, &truth));
        eprintln!(
            "{aim}: spread/error in the box {:.2}, chains' detail {detail:.2} of the truth's, mean {p:.2} dB (zero fill {p_zero:.2})",
            spread / err
        );
        assert!(
            summary.contains(if aim == "mean" {
                "warm: 0.8"
            } else {
                "eta: 0.5, warm: 1.5"
            }),
            "{summary}"
        );
        assert!(p > p_zero + 2.0, "{aim}: {p:.2} dB, zero fill {p_zero:.2}");
        figures.push((spread / err, detail));
    }
    let ((spread_mean, detail_mean), (spread_div, detail_div)) = (figures[0], figures[1]);
    assert!(spread_div > 1.5 * spread_mean, "{figures:?}");
    assert!(detail_div > 1.3 * detail_mean, "{figures:?}");
}

/// What a user who changes nothing runs on a photo: every sampler's preset in the window's list
/// for a patch prior (its name and steps; `NoiseSpaceLangevin` with its photo warm start)
/// restores a 48² crop of a held-out photo better than the naive answer, for scratches
/// (Gaussian interpolation), 2× super-resolution (bicubic), blur (y) and denoising (y).
#[test]
fn every_preset_beats_the_naive_answer_on_a_photo_crop() {
    use posterior_lab::operators::{Blur, Downsample, Identity, Mask};
    use posterior_lab::problem::Problem;
    use posterior_lab::{metrics, photo, samplers};
    use std::sync::Arc;
    let device = Device::flex();
    let n = 48;
    let shape = [3, n, n];
    let prior = Arc::new(photo_prior(shape, Some(Tiling::default())));
    let bytes = std::fs::read(root().join("assets/demo/flower.jpg")).unwrap();
    let truth = photo::square_crop(&bytes, "flower", n).unwrap().data;
    let x = tensor::from_vec(truth.clone(), [1, 3, n, n], &device);
    let mask = photo::scratches(n, n, 0.1, 7);
    let cases: Vec<(&str, Arc<dyn Operator>, f64)> = vec![
        (
            "scratches",
            Arc::new(Mask::from_array(shape, &[n, n], mask.clone(), &device).unwrap()),
            0.02,
        ),
        ("2× SR", Arc::new(Downsample::new(shape, 2).unwrap()), 0.02),
        (
            "blur σ 1.5",
            Arc::new(Blur::new(shape, 1.5, &device).unwrap()),
            0.02,
        ),
        ("denoising", Arc::new(Identity::new(shape)), 0.1),
    ];
    let mut failures = vec![];
    for (name, op, sigma_y) in cases {
        let y = posterior_lab::recipe::simulate_y(op.as_ref(), x.clone(), sigma_y, 1);
        let yv = tensor::to_vec(&y).unwrap();
        let naive = match name {
            "scratches" => photo::interpolate_holes(&yv, &mask, shape, 2.0).unwrap(),
            "2× SR" => photo::bicubic(&yv, [3, n / 2, n / 2], 2),
            _ => yv.clone(),
        };
        let base = metrics::psnr(&naive, &truth);
        let problem = Problem::new(prior.clone(), op, y, sigma_y, device.clone()).unwrap();
        for info in samplers::ALL {
            if matches!(info.name, "Prior" | "Exact") {
                continue;
            }
            let line = info.preset_for(true);
            let spec = samplers::parse(line).unwrap();
            let mut s = samplers::build(&spec, &problem, 4, 3).unwrap();
            samplers::run(s.as_mut(), &problem, |_| {}).unwrap();
            let (mean, _) = metrics::mean_variance(&tensor::to_vec(&s.samples()).unwrap(), 4);
            let ours = metrics::psnr(&mean, &truth);
            eprintln!("{name}: {line}: {ours:.2} dB, naive {base:.2} dB");
            if ours <= base {
                failures.push(format!("{name}: {line} {ours:.2} dB <= naive {base:.2} dB"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A folder of real JPEGs with a `Jpeg` template: each is restored at the quality its own
/// tables were saved with (not the template's), and the table says so.
#[test]
fn batch_restores_real_jpegs_at_their_own_quality() {
    use image::ImageEncoder;
    let dir = scratch("batch-jpeg");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let photo = image::open(root().join("assets/demo/flower.jpg"))
        .unwrap()
        .resize_exact(40, 36, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut bytes = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 35)
        .write_image(photo.as_raw(), 40, 36, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(input.join("saved.jpg"), &bytes).unwrap();
    let template = batch_template(&dir, "Jpeg(quality: 90)");
    let text = std::fs::read_to_string(&template)
        .unwrap()
        .replace("Auto(speed: Fast)", "DiffPir(steps: 3, warm: 0.15)")
        .replace("noise_sigma: 0.02", "noise_sigma: 0.0");
    std::fs::write(&template, text).unwrap();
    let out = dir.join("out");
    let o = run_batch(&template, &input, &out, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recipe =
        posterior_lab::recipe::Recipe::from_file(&out.join("saved/input/recipe.ron")).unwrap();
    assert_eq!(
        recipe.operator,
        posterior_lab::operators::OperatorSpec::Jpeg { quality: 35 }
    );
    let table = std::fs::read_to_string(out.join("batch.md")).unwrap();
    assert!(
        table.contains("JPEG quality 35 read from the file"),
        "{table}"
    );
    let mean = npy::read(&out.join("saved/result/mean.npy")).unwrap();
    assert_eq!(mean.shape, vec![3, 36, 40]);
    let _ = std::fs::remove_dir_all(&dir);
}
