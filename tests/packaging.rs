//! Installable packages: `packaging/build.sh` builds the .deb and the portable archive from the
//! release binary under test; the .deb unpacked into a temporary root (no system install) runs
//! from an unrelated folder with an empty HOME: `models` lists the installed models, `sample`
//! resolves `Model("fashion-mnist")` by name; the desktop entry and metainfo validate. Also the
//! per-user model folder: importing a broken model is refused and leaves the folder unchanged.
#![allow(clippy::unwrap_used)]

use posterior_lab::npy;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pl-pkg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// CI installs every tool; elsewhere a missing one skips the check with a note.
fn need(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is missing in CI (.ci/run installs it)"
    );
    eprintln!("skipped: {tool} not found");
    false
}

#[test]
fn the_deb_installs_runs_from_anywhere_and_validates() {
    if !cfg!(target_os = "linux") || !need("dpkg-deb") {
        return;
    }
    let out = scratch("out");
    let o = Command::new("bash")
        .arg(root().join("packaging/build.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_posterior-lab"), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build.sh: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let deb = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let tgz = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a portable archive");
    for p in [deb, tgz] {
        let mb = std::fs::metadata(p).unwrap().len() as f64 / 1e6;
        eprintln!("package {}: {mb:.1} MB", p.display());
    }

    let unpacked = scratch("root");
    let o = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bin = unpacked.join("usr/bin/posterior-lab");
    let installed = unpacked.join("usr/share/posterior-lab/models");
    let home = scratch("home");
    let elsewhere = scratch("elsewhere");
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .current_dir(&elsewhere)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("POSTERIOR_LAB_MODELS")
            .output()
            .unwrap()
    };

    let o = run(&["models"]);
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for name in ["fashion-mnist", "mnist", "photo"] {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"));
        assert!(line.contains("installed"), "{line}");
        assert!(
            line.contains(&installed.join(name).display().to_string()),
            "{line}"
        );
    }

    // A recipe that names its prior: resolved through the installed models.
    let x: Vec<f32> = (0..784).map(|i| ((i % 28) as f32 / 14.0) - 1.0).collect();
    npy::write(&elsewhere.join("x.npy"), &[1, 28, 28], &x).unwrap();
    std::fs::write(
        elsewhere.join("r.ron"),
        r#"(
    prior: Model("fashion-mnist"),
    shape: (1, 28, 28),
    operator: Identity,
    measurement: Simulate(truth: Npy("x.npy")),
    noise_sigma: 0.2,
    sampler: Ddrm(steps: 5),
    chains: 2,
    seed: 1,
)"#,
    )
    .unwrap();
    let o = run(&[
        "sample",
        "--recipe",
        "r.ron",
        "--out",
        "out",
        "--backend",
        "cpu",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        npy::read(&elsewhere.join("out/samples.npy")).unwrap().shape,
        vec![2, 1, 28, 28]
    );
    // The user's folder was not created by running: nothing is written outside --out.
    assert!(!home.join(".local").exists());

    let o = run(&["--version"]);
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(v.starts_with("posterior-lab 0.1.0 ("), "{v}");

    let share = unpacked.join("usr/share");
    let desktop = share.join("applications/io.github.posterior_lab.PosteriorLab.desktop");
    let meta = share.join("metainfo/io.github.posterior_lab.PosteriorLab.metainfo.xml");
    assert!(
        share
            .join("icons/hicolor/scalable/apps/io.github.posterior_lab.PosteriorLab.svg")
            .is_file()
    );
    assert!(
        share
            .join("icons/hicolor/256x256/apps/io.github.posterior_lab.PosteriorLab.png")
            .is_file()
    );
    let copyright = std::fs::read_to_string(share.join("doc/posterior-lab/copyright")).unwrap();
    assert!(copyright.contains("CC-BY-4.0") && copyright.contains("Zalando"));
    if need("desktop-file-validate") {
        let o = Command::new("desktop-file-validate")
            .arg(&desktop)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
    if need("appstreamcli") {
        let o = Command::new("appstreamcli")
            .args(["validate", "--no-net"])
            .arg(&meta)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
    for d in [out, unpacked, home, elsewhere] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn copy_model(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["card.ron", "model.bpk"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// Snapshot of a folder's files and sizes, to check it is unchanged.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(listing(&p));
            } else {
                out.push((p.display().to_string(), e.metadata().unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn importing_a_broken_model_is_refused_and_changes_nothing() {
    use posterior_lab::models;
    let device = burn::tensor::Device::flex();
    let work = scratch("import");
    let user = work.join("user");
    let good = root().join("models/fashion-mnist");

    // A good one goes in whole.
    let ok = work.join("mine");
    copy_model(&good, &ok);
    let dst = models::import_into(&ok, &user, &device).unwrap();
    assert!(dst.join("card.ron").is_file() && dst.join("model.bpk").is_file());
    let before = listing(&user);

    // Missing card.
    let no_card = work.join("no-card");
    std::fs::create_dir_all(&no_card).unwrap();
    std::fs::copy(good.join("model.bpk"), no_card.join("model.bpk")).unwrap();
    // Truncated weights.
    let truncated = work.join("truncated");
    copy_model(&good, &truncated);
    let bytes = std::fs::read(good.join("model.bpk")).unwrap();
    std::fs::write(truncated.join("model.bpk"), &bytes[..bytes.len() / 2]).unwrap();
    // Weights of another shape: the mnist card's network with the photo prior's weights.
    let wrong = work.join("wrong-shape");
    copy_model(&good, &wrong);
    std::fs::copy(
        root().join("models/photo/model.bpk"),
        wrong.join("model.bpk"),
    )
    .unwrap();
    // The same name twice.
    let dup_src = work.join("dup");
    std::fs::create_dir_all(&dup_src).unwrap();
    let dup = dup_src.join("mine");
    copy_model(&good, &dup);

    for (case, src, words) in [
        ("missing card", &no_card, "card.ron"),
        ("truncated weights", &truncated, "model.bpk"),
        ("wrong shape", &wrong, "model.bpk"),
        ("name taken", &dup, "already"),
    ] {
        let e = models::import_into(src, &user, &device)
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"))
            .to_string();
        eprintln!("{case}: {e}");
        assert!(e.contains(words), "{case}: {e}");
        assert_eq!(listing(&user), before, "{case}: the user folder changed");
    }
    let _ = std::fs::remove_dir_all(work);
}
