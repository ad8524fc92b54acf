//! The command-line contract: `posterior-lab sample --recipe R --out DIR` end to end, the
//! shipped example recipes, and bad input (one clear message, non-zero exit, nothing written).
#![allow(clippy::unwrap_used)]

use posterior_lab::npy;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_posterior-lab"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pl-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small 1x4x4 workspace: a two-component mixture, a mask, a truth and a recipe template.
fn workspace(name: &str) -> PathBuf {
    let dir = scratch(name);
    let d = 16;
    let var = |v: f64| format!("[{}]", vec![v.to_string(); d].join(", "));
    let mean = |v: f64| {
        format!(
            "[{}]",
            (0..d)
                .map(|i| format!("{}", v * (i as f64 / 8.0 - 1.0)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    std::fs::write(
        dir.join("prior.ron"),
        format!(
            "(weights: [0.4, 0.6], means: [{}, {}], variances: [{}, {}])",
            mean(0.8),
            mean(-0.8),
            var(0.05),
            var(0.08)
        ),
    )
    .unwrap();
    let mut mask = vec![1.0f32; d];
    mask[5] = 0.0;
    mask[6] = 0.0;
    mask[9] = 0.0;
    npy::write(&dir.join("mask.npy"), &[4, 4], &mask).unwrap();
    let truth: Vec<f32> = (0..d).map(|i| 0.5 * (i as f32 / 8.0 - 1.0)).collect();
    npy::write(&dir.join("x.npy"), &[1, 4, 4], &truth).unwrap();
    dir
}

fn recipe(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const BASE: &str = r#"(
    prior: Gmm("prior.ron"),
    shape: (1, 4, 4),
    operator: Mask("mask.npy"),
    measurement: Simulate(truth: Npy("x.npy")),
    noise_sigma: 0.05,
    sampler: SAMPLER,
    chains: 12,
    seed: 7,
)"#;

/// `sample --quiet --backend cpu EXTRA… --recipe R --out OUT`.
fn run_quiet(recipe: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args(["sample", "--quiet", "--backend", "cpu"])
        .args(extra)
        .arg("--recipe")
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn run(recipe: &Path, out: &Path) -> std::process::Output {
    bin()
        .args(["sample", "--recipe"])
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .args(["--backend", "cpu"])
        .output()
        .unwrap()
}

#[test]
fn sample_writes_every_output_of_the_contract() {
    let dir = workspace("ok");
    let r = recipe(&dir, "r.ron", &BASE.replace("SAMPLER", "Exact"));
    let out = dir.join("out/nested");
    let o = run(&r, &out);
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let samples = npy::read(&out.join("samples.npy")).unwrap();
    assert_eq!(samples.shape, vec![12, 1, 4, 4]);
    assert_eq!(
        npy::read(&out.join("mean.npy")).unwrap().shape,
        vec![1, 4, 4]
    );
    let var = npy::read(&out.join("variance.npy")).unwrap();
    assert_eq!(var.shape, vec![1, 4, 4]);
    // Seen pixels are pinned by y (σ_y = 0.05); missing ones keep the prior's spread.
    assert!(
        var.data[5] > 10.0 * var.data[0],
        "variance missing {} vs seen {}",
        var.data[5],
        var.data[0]
    );
    assert_eq!(
        npy::read(&out.join("truth.npy")).unwrap().shape,
        vec![1, 4, 4]
    );
    assert_eq!(npy::read(&out.join("y.npy")).unwrap().shape, vec![1, 4, 4]);
    let summary = std::fs::read_to_string(out.join("summary.ron")).unwrap();
    for key in ["nfe_per_chain", "seconds", "backend", "residual"] {
        assert!(summary.contains(key), "summary lacks {key}: {summary}");
    }
    let s: posterior_lab::output::Summary = ron::from_str(&summary).unwrap();
    assert!(
        s.residual > 0.3 && s.residual < 3.0,
        "residual {}",
        s.residual
    );
    for png in ["mean.png", "variance.png", "samples.png"] {
        assert!(image::open(out.join(png)).is_ok(), "{png}");
    }
    // Uncertainty outputs: 11 orthonormal directions (chains − 1) whose variances add up to
    // the per-pixel variances (divisor chains − 1), the 2.5%/97.5% quantiles around the mean,
    // and calibration figures since the truth is known.
    let pca = npy::read(&out.join("pca.npy")).unwrap();
    assert_eq!(pca.shape, vec![11, 1, 4, 4]);
    let pca_var = npy::read(&out.join("pca_variance.npy")).unwrap();
    assert_eq!(pca_var.shape, vec![11]);
    for i in 0..11 {
        for j in 0..11 {
            let dot: f32 = (0..16)
                .map(|p| pca.data[i * 16 + p] * pca.data[j * 16 + p])
                .sum();
            let want = if i == j && pca_var.data[i] > 0.0 {
                1.0
            } else {
                0.0
            };
            assert!((dot - want).abs() < 1e-4, "<v{i}, v{j}> = {dot}");
        }
    }
    let total: f32 = var.data.iter().sum::<f32>() * 12.0 / 11.0;
    let sum: f32 = pca_var.data.iter().sum();
    assert!((sum - total).abs() < 1e-3 * total, "{sum} vs {total}");
    assert!(pca_var.data.windows(2).all(|w| w[0] >= w[1]));
    let q = npy::read(&out.join("quantiles.npy")).unwrap();
    assert_eq!(q.shape, vec![2, 1, 4, 4]);
    let mean = npy::read(&out.join("mean.npy")).unwrap();
    for p in 0..16 {
        assert!(q.data[p] <= mean.data[p] && mean.data[p] <= q.data[16 + p]);
    }
    let coverage = s.coverage.clone().unwrap();
    assert_eq!(
        coverage.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![0.5, 0.8, 0.9, 0.95]
    );
    assert!(coverage.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(s.coverage_unseen.as_ref().map(|c| c.len()), Some(4));
    assert!(s.z2.is_some_and(|z| z.is_finite() && z > 0.0));
    assert!(s.crps.is_some_and(|c| c.is_finite() && c > 0.0));
    assert!(s.z2_unseen.is_some() && s.crps_unseen.is_some());
    assert_eq!(s.pca_explained.len(), 11);
    // K on request, and a K the chains cannot carry is refused before anything runs.
    let out_k = dir.join("out-k");
    let o = run_quiet(&r, &out_k, &["--components", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        npy::read(&out_k.join("pca.npy")).unwrap().shape,
        vec![3, 1, 4, 4]
    );
    let out_bad = dir.join("out-bad");
    let o = run_quiet(&r, &out_bad, &["--components", "12"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("K = 12 is more than chains − 1 = 11"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out_bad.exists());
    // One chain: no directions to find, still every file (K = 0).
    let one = recipe(
        &dir,
        "one.ron",
        &BASE
            .replace("SAMPLER", "Exact")
            .replace("chains: 12", "chains: 1"),
    );
    let out_one = dir.join("out-one");
    let o = run(&one, &out_one);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        npy::read(&out_one.join("pca.npy")).unwrap().shape,
        vec![0, 1, 4, 4]
    );
    // No staging folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn every_sampler_runs_through_the_command_line() {
    let dir = workspace("samplers");
    for (i, sampler) in [
        "Exact",
        "Prior(steps: 8)",
        "Prior(steps: 8, solver: Ancestral)",
        "Dps(steps: 10)",
        "Dps(steps: 10, zeta: 0.5)",
        "Ald(steps: 5, inner: 2)",
        "Almc(steps: 20, warmup: 10)",
        "Almc(steps: 20, kappa: 0.01, tau: 0.01, final_denoise: false)",
        "Eps(steps: 10)",
        "Eps(steps: 5, mode: ZeroShot, solver: Heun)",
        "Eps(steps: 1)",
        "DiffPir(steps: 10)",
        "PiGdm(steps: 10)",
        "Ddrm(steps: 10)",
        "Daps(steps: 4, ode_steps: 2, langevin_steps: 5)",
        "NoiseSpaceLangevin(steps: 5, warmup: 5)",
        "NoiseSpaceLangevin(steps: 5, warmup: 5, drift: Code, generator_steps: 2, clamp: true)",
    ]
    .iter()
    .enumerate()
    {
        let r = recipe(
            &dir,
            &format!("r{i}.ron"),
            &BASE.replace("SAMPLER", sampler),
        );
        let out = dir.join(format!("out{i}"));
        let o = run(&r, &out);
        assert!(
            o.status.success(),
            "{sampler}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = npy::read(&out.join("samples.npy")).unwrap();
        assert!(s.data.iter().all(|v| v.is_finite()), "{sampler}");
    }
}

#[test]
fn image_truth_is_loaded_and_resized_only_when_asked() {
    let dir = workspace("image");
    let img = image::GrayImage::from_fn(4, 4, |x, y| image::Luma([(x * 60 + y * 3) as u8]));
    img.save(dir.join("x.png")).unwrap();
    let big = image::GrayImage::from_fn(9, 7, |x, _| image::Luma([(x * 20) as u8]));
    big.save(dir.join("big.png")).unwrap();

    let ok = recipe(
        &dir,
        "ok.ron",
        &BASE
            .replace("SAMPLER", "Exact")
            .replace(r#"Npy("x.npy")"#, r#"Image("x.png")"#),
    );
    let o = run(&ok, &dir.join("out-ok"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let truth = npy::read(&dir.join("out-ok/truth.npy")).unwrap();
    assert!(
        (truth.data[0] + 1.0).abs() < 1e-6,
        "pixel 0 maps to -1, got {}",
        truth.data[0]
    );

    let mismatch = recipe(
        &dir,
        "big.ron",
        &BASE
            .replace("SAMPLER", "Exact")
            .replace(r#"Npy("x.npy")"#, r#"Image("big.png")"#),
    );
    let o = run(&mismatch, &dir.join("out-big"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("big.png") && err.contains("resize"),
        "{err}"
    );
    assert!(!dir.join("out-big").exists());

    let resized = recipe(
        &dir,
        "resized.ron",
        &BASE.replace("SAMPLER", "Exact").replace(
            r#"Simulate(truth: Npy("x.npy"))"#,
            r#"Simulate(truth: Image("big.png"), resize: true)"#,
        ),
    );
    let o = run(&resized, &dir.join("out-resized"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Each bad input: non-zero exit, a single `error:` line naming `needle`s, and no output folder.
#[test]
fn bad_input_gives_one_clear_message_and_writes_nothing() {
    let dir = workspace("bad");
    npy::write(&dir.join("y-wrong.npy"), &[3, 3], &[0.0; 9]).unwrap();
    npy::write(&dir.join("x-nan.npy"), &[1, 4, 4], &[f32::NAN; 16]).unwrap();
    std::fs::write(dir.join("garbage.npy"), b"not an array").unwrap();
    std::fs::write(dir.join("prior-9.ron"), "(weights: [1.0], means: [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], variances: [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])").unwrap();
    let exact = BASE.replace("SAMPLER", "Exact");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "missing-recipe",
            String::new(),
            vec!["missing-recipe.ron", "cannot read"],
        ),
        (
            "malformed",
            "(prior: Gmm(\"prior.ron\"), shape: (1, 4".into(),
            vec!["malformed.ron", "not a valid recipe"],
        ),
        (
            "unknown-field",
            exact.replace("seed: 7,", "seed: 7, colour: 3,"),
            vec!["unknown-field.ron", "colour"],
        ),
        (
            "unknown-sampler",
            BASE.replace("SAMPLER", "Magic(steps: 3)"),
            vec!["unknown-sampler.ron", "Magic"],
        ),
        (
            "missing-gmm",
            exact.replace("prior.ron", "nope.ron"),
            vec!["nope.ron", "cannot read"],
        ),
        (
            "gmm-dimension",
            exact.replace("prior.ron", "prior-9.ron"),
            vec!["prior-9.ron", "dimension 9", "16"],
        ),
        (
            "y-shape",
            exact.replace(r#"Simulate(truth: Npy("x.npy"))"#, r#"Npy("y-wrong.npy")"#),
            vec!["y-wrong.npy", "[3, 3]"],
        ),
        (
            "nan-truth",
            exact.replace("x.npy", "x-nan.npy"),
            vec!["x-nan.npy", "non-finite"],
        ),
        (
            "garbage-npy",
            exact.replace("mask.npy", "garbage.npy"),
            vec!["garbage.npy", "npy"],
        ),
        (
            "missing-image",
            exact.replace(r#"Npy("x.npy")"#, r#"Image("none.png")"#),
            vec!["none.png", "cannot read image"],
        ),
        (
            "bad-sigma",
            exact.replace("noise_sigma: 0.05", "noise_sigma: -1.0"),
            vec!["bad-sigma.ron", "noise_sigma"],
        ),
        (
            "zero-steps",
            BASE.replace("SAMPLER", "Dps(steps: 0)"),
            vec!["zero-steps.ron", "Dps", "steps"],
        ),
    ];
    for (name, body, needles) in cases {
        let r = if name == "missing-recipe" {
            dir.join("missing-recipe.ron")
        } else {
            recipe(&dir, &format!("{name}.ron"), &body)
        };
        let out = dir.join(format!("out-{name}"));
        let o = run(&r, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: should fail");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{name}: expected one error line in {err}");
        for n in needles {
            assert!(
                lines[0].contains(n),
                "{name}: '{}' does not mention '{n}'",
                lines[0]
            );
        }
        assert!(!out.exists(), "{name}: output folder was created");
    }
}

#[test]
fn shipped_example_recipes_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
    let dir = scratch("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        // photo-* recipes run (with figures checked) in tests/models.rs, the batch template
        // photo-batch-sr.ron in tests/photo.rs; gmm-8x8.ron and
        // lab-ring.ron are mixture files the recipes name, not recipes.
        let mixture = name == "gmm-8x8.ron" || name == "lab-ring.ron";
        if !name.ends_with(".ron") || mixture || name.starts_with("photo-") {
            continue;
        }
        let out = dir.join(&name);
        let o = run(&p, &out);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.join("samples.npy").exists() && out.join("summary.ron").exists());
        n += 1;
    }
    assert!(n >= 5, "only {n} example recipes found");
}

#[test]
fn a_sampler_refuses_what_it_cannot_handle() {
    let dir = scratch("refuse");
    let d = 48 * 48;
    let ones = format!("[{}]", vec!["1.0"; d].join(", "));
    let zeros = format!("[{}]", vec!["0.0"; d].join(", "));
    std::fs::write(
        dir.join("big.ron"),
        format!("(weights: [1.0], means: [{zeros}], variances: [{ones}])"),
    )
    .unwrap();
    let cases = [
        // DDRM needs an SVD: a general matrix has no closed form and d = 2304 is past the dense
        // limit.
        (
            "Ddrm(steps: 5)",
            "Matrix(\"a.npy\")",
            "(1, 48, 48)",
            "big.ron",
            "SVD",
        ),
        // EPS's exact mode works with dense f64 algebra in d: refused past its limit.
        (
            "Eps(steps: 5, mode: Exact)",
            "Identity",
            "(1, 48, 48)",
            "big.ron",
            "dense",
        ),
    ];
    for (i, (sampler, op, shape, prior, needle)) in cases.iter().enumerate() {
        let body = format!(
            "(prior: Gmm(\"{prior}\"), shape: {shape}, operator: {op}, measurement: Simulate(truth: Npy(\"x.npy\")), noise_sigma: 0.1, sampler: {sampler}, chains: 2)"
        );
        npy::write(&dir.join("x.npy"), &[1, 48, 48], &vec![0.0; d]).unwrap();
        npy::write(&dir.join("a.npy"), &[2, d], &vec![0.01; 2 * d]).unwrap();
        let r = recipe(&dir, &format!("r{i}.ron"), &body);
        let out = dir.join(format!("out{i}"));
        let o = run(&r, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        let name = &sampler[..sampler.find('(').unwrap_or(sampler.len())];
        assert!(
            !o.status.success() && err.contains(needle) && err.contains(name),
            "{sampler}: {err}"
        );
        assert!(!out.exists());
    }
}

/// Writes raw bytes as a file (hostile `.npy` headers and the like).
fn raw(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A `.npy` file with the given header dictionary and payload.
fn npy_with_header(dict: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(payload);
    out
}

/// Hostile input found by a fuzzing user: each ends with exit status 1 and one `error:` line
/// naming the problem (never a panic, an abort or a hang), and nothing in the output folder.
#[test]
fn hostile_inputs_end_with_one_error_line() {
    let dir = workspace("hostile");
    raw(
        &dir,
        "overflow.npy",
        &npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952, 8), }",
            &[0; 64],
        ),
    );
    raw(
        &dir,
        "fortran-huge.npy",
        &npy_with_header(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (4611686018427387904, 4, 4), }",
            &[0; 64],
        ),
    );
    let fifo = dir.join("fifo.npy");
    let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: plain mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let exact = BASE.replace("SAMPLER", "Exact");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "npy-overflow",
            exact.replace("x.npy", "overflow.npy"),
            vec!["overflow.npy", "elements"],
        ),
        (
            "npy-fortran-huge",
            exact.replace("x.npy", "fortran-huge.npy"),
            vec!["fortran-huge.npy", "elements"],
        ),
        (
            "fifo",
            exact.replace("x.npy", "fifo.npy"),
            vec!["fifo.npy", "not a regular file"],
        ),
        (
            "shape-wraps",
            exact.replace("shape: (1, 4, 4)", "shape: (1, 4294967296, 4294967296)"),
            vec!["shape"],
        ),
        (
            "shape-too-big",
            exact.replace("shape: (1, 4, 4)", "shape: (3, 100000, 100000)"),
            vec!["shape", "reduce the size"],
        ),
        (
            "steps-huge",
            BASE.replace("SAMPLER", "Dps(steps: 4611686018427387904)"),
            vec!["Dps", "steps must be between"],
        ),
        (
            "daps-ode-steps",
            BASE.replace("SAMPLER", "Daps(steps: 5, ode_steps: 1000000000000)"),
            vec!["Daps", "ode_steps"],
        ),
        (
            "rho-zero",
            BASE.replace("SAMPLER", "Dps(steps: 5, rho: 0)"),
            vec!["rho"],
        ),
        (
            "ddrm-eta-b",
            BASE.replace("SAMPLER", "Ddrm(steps: 5, eta_b: -5)"),
            vec!["Ddrm", "eta_b"],
        ),
        (
            "dps-diverges",
            BASE.replace("SAMPLER", "Dps(steps: 30, zeta: 1000000)"),
            vec!["diverged", "zeta"],
        ),
    ];
    for (name, body, needles) in cases {
        let r = recipe(&dir, &format!("{name}.ron"), &body);
        let out = dir.join(format!("out-{name}"));
        let o = run(&r, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{name}: expected one error line in {err}");
        for n in needles {
            assert!(lines[0].contains(n), "{name}: '{}' lacks '{n}'", lines[0]);
        }
        assert!(!out.exists(), "{name}: output folder was created");
    }
    // A bad argument is exit status 1 too (clap's default is 2).
    let o = bin().args(["sample", "--no-such-flag"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// `--out` never loses anything: a folder holding the recipe's inputs or other files is refused
/// before the run, an earlier result is replaced whole, and no staging folder is left behind.
#[test]
fn out_folder_is_all_or_nothing_and_never_overwrites_inputs() {
    let dir = workspace("out-safety");
    let r = recipe(&dir, "r.ron", &BASE.replace("SAMPLER", "Exact"));
    let before = std::fs::read(dir.join("x.npy")).unwrap();
    let o = run(&r, &dir);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("input of the recipe"), "{err}");
    assert_eq!(std::fs::read(dir.join("x.npy")).unwrap(), before);
    assert!(!dir.join("samples.npy").exists());

    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let o = run(&r, &other);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other files"));
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");

    let out = dir.join("result");
    assert!(run(&r, &out).status.success());
    let first = std::fs::read(out.join("samples.npy")).unwrap();
    let r2 = recipe(
        &dir,
        "r2.ron",
        &BASE
            .replace("SAMPLER", "Exact")
            .replace("seed: 7", "seed: 8"),
    );
    assert!(
        run(&r2, &out).status.success(),
        "an earlier result is replaced"
    );
    assert_ne!(std::fs::read(out.join("samples.npy")).unwrap(), first);
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".partial-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A very long --out name still works (the staging name is shortened).
    let long = dir.join("o".repeat(240));
    let o = run(&r, &long);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // --out as a link to a folder: the results land in the folder and the link stays.
    #[cfg(unix)]
    {
        let target = dir.join("linked-target");
        std::fs::create_dir_all(&target).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for _ in 0..2 {
            let o = run(&r, &link);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(target.join("summary.ron").exists());
    }
}

/// An EPS fine-tune or a distilled generator is not a prior: naming one says so; a broken
/// companion beside a prior does not block the prior.
#[test]
fn companions_are_not_priors_and_broken_ones_do_not_block() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    if !root.join("fashion-mnist-eps/card.ron").exists() {
        eprintln!("skipped: models/fashion-mnist-eps is not here");
        return;
    }
    let dir = scratch("companions");
    let heldout = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
    let body = |model: &str| {
        format!(
            r#"(prior: Model("{model}"), shape: (1, 28, 28), operator: Identity,
               measurement: Simulate(truth: Image("{}/../gallery/fashion-sneaker.png")),
               noise_sigma: 0.1, sampler: Eps(steps: 2), chains: 2, seed: 1)"#,
            heldout.display()
        )
    };
    let r = recipe(
        &dir,
        "eps.ron",
        &body(&root.join("fashion-mnist-eps").display().to_string()),
    );
    let o = run(&r, &dir.join("out-eps"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("EPS fine-tune of 'fashion-mnist'"), "{err}");

    // A copy of the prior with a broken generator beside it.
    let models = dir.join("models");
    for (from, to) in [
        ("fashion-mnist", "fashion-mnist"),
        ("fashion-mnist-cm", "fashion-mnist-cm"),
    ] {
        let d = models.join(to);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["card.ron", "model.bpk"] {
            std::fs::copy(root.join(from).join(f), d.join(f)).unwrap();
        }
    }
    std::fs::write(models.join("fashion-mnist-cm/card.ron"), b"(name: broken").unwrap();
    let r = recipe(
        &dir,
        "ok.ron",
        &body(&models.join("fashion-mnist").display().to_string()),
    );
    let o = run(&r, &dir.join("out-ok"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("ignoring the one-step generator"), "{err}");
}

/// Ctrl+C (SIGINT) or SIGTERM during a run: exit with one message, no output folder, no staging
/// folder left behind.
#[test]
fn an_interrupted_run_writes_nothing() {
    let dir = workspace("interrupt");
    let r = recipe(
        &dir,
        "long.ron",
        &BASE.replace("SAMPLER", "Ald(steps: 1000000, inner: 5)"),
    );
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let out = dir.join(format!("out-{signal}"));
        let child = bin()
            .args(["sample", "--recipe"])
            .arg(&r)
            .arg("--out")
            .arg(&out)
            .args(["--backend", "cpu", "--quiet"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!out.exists());
    }
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `eval-model` on an empty held-out set is one clear error, not a division by zero.
#[test]
fn eval_model_refuses_an_empty_set() {
    let dir = scratch("eval-empty");
    npy::write(&dir.join("empty.npy"), &[0, 28, 28], &[]).unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fashion-mnist");
    let o = bin()
        .args(["eval-model", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(dir.join("empty.npy"))
        .args(["--backend", "cpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no images"), "{err}");
}

/// `--list-devices`, `--device` on a command, `--version`, and a recipe naming a model that no
/// folder holds: answers and one-line errors.
#[test]
fn devices_version_and_model_names() {
    let o = bin().arg("--list-devices").output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && list.contains("cpu: burn flex"),
        "{list}"
    );
    let o = bin().arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(v.starts_with("posterior-lab 0.1.0 ("), "{v}");

    let dir = workspace("devices");
    let r = recipe(&dir, "r.ron", &BASE.replace("SAMPLER", "Exact"));
    let sample = |device: &str, out: &str| {
        bin()
            .args(["sample", "--quiet", "--device", device, "--recipe"])
            .arg(&r)
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    let o = sample("cpu", "out-cpu");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: posterior_lab::output::Summary =
        ron::from_str(&std::fs::read_to_string(dir.join("out-cpu/summary.ron")).unwrap()).unwrap();
    assert!(s.backend.contains("cpu"), "{}", s.backend);
    let o = sample("no-such-gpu", "out-bad");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no device 'no-such-gpu'") && err.contains("cpu"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.join("out-bad").exists());

    // A bare model name that no folder holds: named in the message, with where it looked.
    let named = recipe(
        &dir,
        "named.ron",
        &BASE
            .replace("Gmm(\"prior.ron\")", "Model(\"no-such-model\")")
            .replace("SAMPLER", "Dps(steps: 5)"),
    );
    let o = run(&named, &dir.join("out-named"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Model(\"no-such-model\")") && err.contains("posterior-lab models"),
        "{err}"
    );
}

/// `--trace`: x_t and x̂0 of every chain after each step, the start first, the last x̂0 frame
/// equal to the samples; a trace too large to hold is refused before the run.
#[test]
fn trace_writes_every_step() {
    let dir = workspace("trace");
    let r = recipe(&dir, "r.ron", &BASE.replace("SAMPLER", "Dps(steps: 6)"));
    let out = dir.join("out");
    let o = run_quiet(&r, &out, &["--trace"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = npy::read(&out.join("trace.npy")).unwrap();
    let x0 = npy::read(&out.join("trace_x0.npy")).unwrap();
    assert_eq!(x.shape, vec![7, 12, 1, 4, 4]);
    assert_eq!(x0.shape, x.shape);
    let samples = npy::read(&out.join("samples.npy")).unwrap();
    let frame = 12 * 16;
    assert_eq!(&x0.data[6 * frame..], samples.data.as_slice());
    // The states move: every step's x_t differs from the one before, and the noise falls.
    let spread = |f: usize| {
        x.data[f * frame..(f + 1) * frame]
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
    };
    for f in 1..7 {
        assert_ne!(
            &x.data[(f - 1) * frame..f * frame],
            &x.data[f * frame..(f + 1) * frame]
        );
    }
    assert!(
        spread(0) > 10.0 * spread(6),
        "{} vs {}",
        spread(0),
        spread(6)
    );

    let big = recipe(
        &dir,
        "big.ron",
        &BASE
            .replace("SAMPLER", "Dps(steps: 900000)")
            .replace("chains: 12", "chains: 1000"),
    );
    let o = run_quiet(&big, &dir.join("out-big"), &["--trace"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--trace") && err.contains("fewer steps or chains"),
        "{err}"
    );
}

/// Runs `sample` on the photo prior and a demo photo resized to `[h, w]` with this operator
/// and sampler (4 chains, σ_y 0.02) in `dir`; returns its summary and output folder.
fn sample_photo(
    dir: &Path,
    k: usize,
    operator: &str,
    [h, w]: [usize; 2],
    sampler: &str,
) -> (posterior_lab::output::Summary, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r = recipe(
        dir,
        &format!("r{k}.ron"),
        &format!(
            "(prior: Model(\"{}\"), shape: (3, {h}, {w}), operator: {operator}, \
             measurement: Simulate(truth: Image(\"{}\"), resize: true), noise_sigma: 0.02, \
             sampler: {sampler}, chains: 4, seed: 1)",
            root.join("models/photo").display(),
            root.join("assets/demo/coffee.jpg").display()
        ),
    );
    let out = dir.join(format!("out{k}"));
    let status = bin()
        .args(["sample", "--quiet", "--backend", "cpu", "--recipe"])
        .arg(&r)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{sampler} at {h}×{w}");
    let text = std::fs::read_to_string(out.join("summary.ron")).unwrap();
    (ron::from_str(&text).unwrap(), out)
}

/// The memory a run is admitted with stays between the process's measured peak and 1.5× it,
/// for a small and a larger photo, with and without gradients through the network; `Auto`
/// counts as the sampler it picks (DDRM here, not a gradient sampler: an estimate 10× the
/// need refused 4-megapixel photos on a 24 GB machine).
#[test]
fn the_memory_estimate_is_within_one_and_a_half_of_the_peak() {
    let dir = scratch("memory");
    let cases = [
        (64, 64, "Ddrm(steps: 2)"),
        (320, 480, "Ddrm(steps: 2)"),
        (320, 480, "Auto"),
        (640, 1024, "Ddrm(steps: 2)"),
        (96, 128, "Dps(steps: 2)"),
        (256, 256, "Dps(steps: 2)"),
    ];
    for (k, (h, w, sampler)) in cases.iter().enumerate() {
        let mask = posterior_lab::photo::scratches(*h, *w, 0.1, 3);
        npy::write(&dir.join(format!("mask{k}.npy")), &[*h, *w], &mask).unwrap();
        let operator = format!("Mask(\"mask{k}.npy\")");
        let (summary, _) = sample_photo(&dir, k, &operator, [*h, *w], sampler);
        let memory = summary.memory.expect("memory figures");
        let Some(peak) = memory.peak_bytes else {
            eprintln!("skipped: this system does not tell a process's peak memory");
            return;
        };
        let ratio = memory.estimated_bytes as f64 / peak as f64;
        eprintln!(
            "{sampler} at {h}×{w}: estimated {:.0} MB, peak {:.0} MB ({ratio:.2}×)",
            memory.estimated_bytes as f64 / 1e6,
            peak as f64 / 1e6
        );
        assert!(
            (1.0..=1.5).contains(&ratio),
            "{sampler} at {h}×{w}: {ratio:.2}"
        );
    }
}

/// `sample` with a prior whose card calibrates the sampler that ran writes `calibrated_std.npy`
/// (the chains' std widened by the card's floor and factor) and says so in summary.ron; a
/// sampler without a measured calibration writes neither.
#[test]
fn sample_writes_the_calibrated_spread_where_the_card_has_one() {
    let dir = scratch("calibrated");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let card_path = root.join("models/photo/card.ron");
    let card = posterior_lab::priors::ModelCard::parse(
        &std::fs::read_to_string(&card_path).unwrap(),
        &card_path,
    )
    .unwrap();
    for (k, sampler) in ["Auto", "Ddrm(steps: 5)"].iter().enumerate() {
        let (summary, out) = sample_photo(&dir, k, "Downsample(2)", [64, 64], sampler);
        if *sampler != "Auto" {
            assert!(summary.calibration.is_none());
            assert!(!out.join("calibrated_std.npy").exists());
            continue;
        }
        let cal = summary
            .calibration
            .expect("Auto's Eps(steps: 5) is calibrated");
        let entry = card
            .calibration
            .iter()
            .find(|c| c.sampler == "Eps(steps: 5)")
            .expect("the card's entry");
        assert_eq!((cal.factor, cal.floor), (entry.factor, entry.floor));
        assert!(
            cal.fitted_on.contains("mate-backgrounds"),
            "{}",
            cal.fitted_on
        );
        let std = npy::read(&out.join("calibrated_std.npy")).unwrap();
        let var = npy::read(&out.join("variance.npy")).unwrap();
        assert_eq!(std.shape, vec![3, 64, 64]);
        for (s, v) in std.data.iter().zip(&var.data) {
            let raw = (f64::from(*v) * 4.0 / 3.0).sqrt();
            let want = cal.factor * (raw * raw + cal.floor * cal.floor).sqrt();
            assert!(
                (f64::from(*s) - want).abs() < 1e-5 * (1.0 + want),
                "{s} vs {want}"
            );
        }
    }
}

/// Bad parameters of the nonlinear measurements and samplers that cannot take them end in one
/// message naming the thing, with nothing written.
#[test]
fn nonlinear_recipes_refuse_bad_parameters_and_samplers_in_one_message() {
    let dir = workspace("nonlinear");
    let cases = [
        (
            "Jpeg(quality: 0)",
            "Dps(steps: 5)",
            "",
            "quality must be between 1 and 100",
        ),
        (
            "Jpeg(quality: 101)",
            "Dps(steps: 5)",
            "",
            "quality must be between 1 and 100",
        ),
        (
            "PhaseRetrieval(oversample: 0.5)",
            "Dps(steps: 5)",
            "",
            "oversample must be",
        ),
        (
            "Clip(gain: 0.0)",
            "Dps(steps: 5)",
            "",
            "gain must be a positive",
        ),
        (
            "Identity",
            "Dps(steps: 5)",
            "noise_model: Poisson(peak: -1.0),",
            "peak must be a positive",
        ),
        (
            "Abs(Clip(gain: 2.0))",
            "Dps(steps: 5)",
            "",
            "takes a linear operator",
        ),
        (
            "Jpeg(quality: 20)",
            "Ddrm(steps: 5)",
            "",
            "Ddrm: cannot take Jpeg(quality: 20)",
        ),
        (
            "Clip(gain: 2.0)",
            "Exact",
            "",
            "Exact: cannot take Clip(gain: 2) with Gaussian noise",
        ),
        (
            "Downsample(2)",
            "PiGdm(steps: 5)",
            "noise_model: Poisson(peak: 20.0),",
            "PiGdm: cannot take Downsample(2) with photon noise (peak 20)",
        ),
    ];
    for (i, (op, sampler, extra, needle)) in cases.iter().enumerate() {
        let body = BASE
            .replace("Mask(\"mask.npy\")", op)
            .replace("SAMPLER", sampler)
            .replace("noise_sigma: 0.05,", &format!("noise_sigma: 0.05, {extra}"));
        let r = recipe(&dir, &format!("r{i}.ron"), &body);
        let out = dir.join(format!("out{i}"));
        let o = run_quiet(&r, &out, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{op} / {sampler} ran");
        assert!(err.contains(needle), "{op} / {sampler}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{op} / {sampler}: {err}");
        assert!(!out.exists(), "{op} / {sampler}: output folder was created");
    }
    // The same recipes with a sampler that takes them run.
    let body = BASE
        .replace("Mask(\"mask.npy\")", "Jpeg(quality: 20)")
        .replace("SAMPLER", "DiffPir(steps: 10)")
        .replace("noise_sigma: 0.05,", "noise_sigma: 0.0,");
    let r = recipe(&dir, "ok.ron", &body);
    let o = run_quiet(&r, &dir.join("ok"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
