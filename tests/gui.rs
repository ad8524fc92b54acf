//! The window, driven headless by egui_kittest with its wgpu renderer (lavapipe in CI): snapshots
//! of the main views on a fixed seed, and interactions that assert on state and files.
//!
//! Snapshots live in tests/snapshots/; regenerate with `UPDATE_SNAPSHOTS=1 cargo test --release
//! --test gui` after a deliberate change and look at them.

use burn::tensor::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use posterior_lab::app::PosteriorApp;
use posterior_lab::app::setup::OpKind;
use posterior_lab::engine::{Engine, Status};
use std::time::Duration;

fn has_vulkan() -> bool {
    // The wgpu renderer needs an adapter (lavapipe is enough). CI installs it and sets CI=true.
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return true;
    }
    !posterior_lab::backend::adapters().is_empty()
}

fn app() -> PosteriorApp {
    let engine = Engine::spawn(Device::flex(), None);
    let mut app = PosteriorApp::with_engine(engine, "cpu (burn flex), test".into(), true).unwrap();
    app.setup.sampler = "Dps(steps: 30)".into();
    app.setup.chains = 4;
    app.setup.seed = 3;
    app
}

/// The snapshot runs on the exact 8×8 mixture, so retraining a network never changes it.
fn h_prior_gmm(app: &mut PosteriorApp) {
    app.setup.prior = "gmm-toy".into();
    app.setup.sampler = "Exact".into();
    app.reload_image();
}

fn harness(app: PosteriorApp) -> Harness<'static, PosteriorApp> {
    Harness::builder()
        .with_size([1280.0, 860.0])
        .wgpu()
        .build_eframe(move |_cc| app)
}

#[test]
fn main_views_after_a_run_snapshot() {
    if !has_vulkan() {
        eprintln!("skipped: no Vulkan adapter (install mesa-vulkan-drivers)");
        return;
    }
    let mut a = app();
    h_prior_gmm(&mut a);
    let mut h = harness(a);
    h.run_steps(3);
    h.snapshot("start_screen");
    h.get_by_label("Run").click();
    h.run_steps(1);
    assert!(h.state().run.is_some(), "Run starts a run");
    assert!(h.state_mut().wait_done(Duration::from_secs(300)));
    assert_eq!(h.state().status(), Some(&Status::Done));
    h.run_steps(3);
    let snap = h.state().run.as_ref().unwrap().latest.clone().unwrap();
    assert_eq!(snap.step, snap.total_steps);
    // Variance is higher inside the missing box than on seen pixels.
    let inputs = snap.inputs.clone().unwrap();
    let (mut inside, mut outside, mut ni, mut no) = (0.0, 0.0, 0, 0);
    for (i, v) in snap.variance.iter().enumerate() {
        if inputs.seen[i] {
            outside += v;
            no += 1;
        } else {
            inside += v;
            ni += 1;
        }
    }
    let (inside, outside) = (inside / ni as f32, outside / no as f32);
    eprintln!("variance inside the box {inside:.4}, outside {outside:.4}");
    assert!(inside > 3.0 * outside);
    h.snapshot("after_run");
}

#[test]
fn pick_operator_paint_undo_step_export() {
    if !has_vulkan() {
        eprintln!("skipped: no Vulkan adapter (install mesa-vulkan-drivers)");
        return;
    }
    let mut h = harness(app());
    h.run_steps(2);

    // Pick the operator from the combo box.
    h.get_by_label("degradation").click();
    h.run_steps(2);
    h.get_by_label("Super-resolution").click();
    h.run_steps(2);
    assert_eq!(h.state().setup.op, OpKind::Downsample);
    h.get_by_label("degradation").click();
    h.run_steps(2);
    h.get_by_label("Inpaint (mask)").click();
    h.run_steps(2);
    assert_eq!(h.state().setup.op, OpKind::Inpaint);

    // Paint a stroke across the y view (below its title), in image coordinates.
    h.state_mut().setup.use_box = false;
    h.run_steps(2);
    let title = h.get_by_label("y (paint here)").rect();
    let a = egui::pos2(title.min.x + 30.0, title.max.y + 60.0);
    let b = egui::pos2(title.min.x + 120.0, title.max.y + 60.0);
    h.drag_at(a);
    h.run_steps(1);
    h.hover_at(egui::pos2((a.x + b.x) / 2.0, a.y));
    h.run_steps(1);
    h.hover_at(b);
    h.run_steps(1);
    h.drop_at(b);
    h.run_steps(2);
    let [_, hh, ww] = h.state().image.as_ref().unwrap().shape;
    let missing = |app: &PosteriorApp| {
        app.mask
            .raster(&app.setup, hh, ww)
            .iter()
            .filter(|s| !**s)
            .count()
    };
    assert_eq!(h.state().mask.strokes.len(), 1, "one stroke painted");
    let painted = missing(h.state());
    assert!(painted >= 10, "the stroke removed {painted} pixels");

    // Undo with the keyboard, redo with the button.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(missing(h.state()), 0);
    h.get_by_label("Redo").click();
    h.run_steps(2);
    assert_eq!(missing(h.state()), painted);

    // Step three times: a paused run advances one step per click.
    for _ in 0..3 {
        h.get_by_label("Step").click();
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(300));
        h.state_mut().poll();
        eprintln!(
            "after click: {:?}",
            h.state()
                .run
                .as_ref()
                .and_then(|r| r.latest.as_ref())
                .map(|s| (s.step, s.status.clone()))
        );
    }
    let t0 = std::time::Instant::now();
    while h
        .state()
        .run
        .as_ref()
        .and_then(|r| r.latest.as_ref())
        .map(|s| s.step)
        != Some(3)
        && t0.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
        h.state_mut().poll();
    }
    let snap = h.state().run.as_ref().unwrap().latest.clone().unwrap();
    assert_eq!(snap.step, 3);
    assert_eq!(snap.status, Status::Paused);

    // Export: PNGs, arrays and a recipe the command line reproduces.
    let dir = std::env::temp_dir().join(format!("pl-gui-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = h.state_mut().export_to(&dir).unwrap();
    for f in [
        "recipe.ron",
        "mean.png",
        "variance.png",
        "chains.png",
        "mean.npy",
        "y.png",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from {files:?}");
    }
    let recipe = std::fs::read_to_string(dir.join("recipe.ron")).unwrap();
    assert!(recipe.contains("Mask(\"input-mask.npy\")"), "{recipe}");
    let mask = posterior_lab::npy::read(&dir.join("input-mask.npy")).unwrap();
    let zeros = mask.data.iter().filter(|v| **v == 0.0).count();
    assert_eq!(zeros, painted, "the exported mask is the painted one");
    let loaded = posterior_lab::recipe::load(&dir.join("recipe.ron"), &Device::flex());
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}

#[test]
fn frames_stay_fast_while_the_engine_runs() {
    if !has_vulkan() {
        eprintln!("skipped: no Vulkan adapter (install mesa-vulkan-drivers)");
        return;
    }
    let mut a = app();
    a.setup.sampler = "Dps(steps: 2000)".into();
    a.setup.chains = 16;
    let mut h = harness(a);
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.state_mut().frame_ms.clear();
    for _ in 0..120 {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let ms = &h.state().frame_ms;
    let p95 = posterior_lab::app::percentile(ms, 0.95);
    let p50 = posterior_lab::app::percentile(ms, 0.5);
    eprintln!(
        "UI time per frame with the engine running flat out: p50 {p50:.2} ms, p95 {p95:.2} ms over {} frames",
        ms.len()
    );
    let snap = h.state().run.as_ref().and_then(|r| r.latest.clone());
    assert!(
        snap.is_some_and(|s| s.step > 0),
        "the engine made progress meanwhile"
    );
    h.state_mut().stop();
}

/// Choosing the colour patch prior swaps the 28×28 gallery picture for a demo photo at the
/// working size, a short run on it completes, and the About window credits the photographers.
#[test]
fn photo_prior_picks_a_demo_photo_and_about_credits_it() {
    if !has_vulkan() {
        eprintln!("skipped: no Vulkan adapter (install mesa-vulkan-drivers)");
        return;
    }
    let mut a = app();
    let Some(photo) = a.priors.iter().find(|p| p.any_size).cloned() else {
        panic!("no patch prior found in models/ (models/photo)");
    };
    a.setup.sampler = "Dps(steps: 5)".into();
    a.setup.chains = 2;
    let mut h = harness(a);
    h.run_steps(2);
    h.get_by_label("prior").click();
    h.run_steps(2);
    h.get_by_label(&photo.label).click();
    h.run_steps(2);
    assert_eq!(h.state().setup.prior, photo.name);
    assert_eq!(h.state().setup.image, "coffee");
    let shape = h.state().image.as_ref().unwrap().shape;
    assert_eq!(shape[0], 3);
    assert!(
        shape[1].max(shape[2]) <= h.state().working_side,
        "{shape:?}"
    );
    h.get_by_label("Run").click();
    h.run_steps(1);
    assert!(h.state_mut().wait_done(Duration::from_secs(300)));
    let snap = h.state().run.as_ref().unwrap().latest.clone().unwrap();
    assert_eq!(snap.status, Status::Done, "{:?}", snap.status);

    h.get_by_label("About").click();
    h.run_steps(2);
    assert!(h.query_by_label("About Posterior Lab").is_some());
    assert!(
        h.query_all_by_label_contains("Aitzol Berasategi")
            .next()
            .is_some()
    );
}
