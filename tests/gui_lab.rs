//! The 2-D lab page, driven headless by egui_kittest (lavapipe in CI): a snapshot on a fixed
//! seed, scrubbing, dragging a mean, the keyboard, a 2-D recipe opening the lab, bad input, and
//! the frame time with 2,000 particles and the arrows shown.
//!
//! Snapshots live in tests/snapshots/; regenerate with `UPDATE_SNAPSHOTS=1 cargo test --release
//! --test gui_lab` after a deliberate change and look at them.
#![allow(clippy::unwrap_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use posterior_lab::app::lab::canvas::Transform;
use posterior_lab::app::lab::{LabAction, LabPrefs};
use posterior_lab::app::toolbar::CentralTab;
use posterior_lab::app::{Action, PosteriorApp};
use posterior_lab::lab::{Component, Density, LabScene, Measure, examples};
#[macro_use]
#[path = "common/window.rs"]
mod window;
use window::harness;

/// The window on the lab page with `prefs`.
fn lab_window(prefs: LabPrefs) -> Harness<'static, PosteriorApp> {
    let mut app = window::test_app();
    app.prefs.tab = CentralTab::Lab;
    app.lab.prefs = prefs;
    let mut h = harness(app);
    h.run_steps(3);
    h
}

fn wait_run(h: &mut Harness<'_, PosteriorApp>) {
    let ctx = h.ctx.clone();
    assert!(h.state_mut().lab.wait_run(&ctx), "the lab's run ends");
    let run = h.state().lab.run.as_ref().unwrap();
    assert!(run.error.is_none(), "{:?}", run.error);
}

fn transform(h: &Harness<'_, PosteriorApp>) -> Transform {
    let lab = &h.state().lab;
    Transform {
        rect: lab.canvas.rect.unwrap(),
        bounds: lab.prefs.bounds,
    }
}

#[test]
fn lab_snapshot_space_runs_and_scrubbing_shows_the_recorded_step() {
    need_vulkan!();
    let prefs = LabPrefs {
        scene: examples::bimodal(),
        sampler: "Dps(steps: 200)".into(),
        particles: 1000,
        seed: 0,
        ..LabPrefs::default()
    };
    let mut h = lab_window(prefs);
    h.key_press(egui::Key::Space);
    h.run_steps(2);
    assert!(
        h.state().lab.run.is_some(),
        "Space runs the particles on the lab page"
    );
    assert!(h.state().run.is_none(), "and not an image run");
    wait_run(&mut h);
    let frames = h.state().lab.run.as_ref().unwrap().frames.clone();
    assert_eq!(frames.len(), 201, "every step is recorded, with the start");
    // Clicking the middle of the step slider shows the middle of the run.
    let slider = h
        .get_by_role_and_label(egui::accesskit::Role::Slider, "step")
        .rect();
    h.hover_at(slider.center());
    h.drag_at(slider.center());
    h.run_steps(1);
    h.drop_at(slider.center());
    h.run_steps(3);
    let mid = h.state().lab.canvas.drawn_step.unwrap();
    assert!(
        (60..=140).contains(&mid),
        "the slider's middle shows step {mid}"
    );
    assert!(
        !h.state().lab.playback.playing,
        "scrubbing pauses the replay"
    );
    assert_eq!(h.state().lab.shown().unwrap().x0, frames[mid].x0);
    h.state_mut().apply(Action::Lab(LabAction::Seek(120)));
    h.run_steps(3);
    let lab = &h.state().lab;
    assert_eq!(
        lab.canvas.drawn_step,
        Some(120),
        "the plot shows the chosen step"
    );
    assert_eq!(lab.shown().unwrap().x, frames[120].x);
    // The arrows and noised density follow the shown step's σ.
    assert_eq!(lab.sigma(), frames[120].sigma);
    h.get_by_label_contains("step 120 of 200");
    // S steps forward by one.
    h.key_press(egui::Key::S);
    h.run_steps(2);
    assert_eq!(h.state().lab.canvas.drawn_step, Some(121));
    h.state_mut().apply(Action::Lab(LabAction::Seek(120)));
    h.run_steps(3);
    h.snapshot("lab_bimodal_dps_step120");
}

#[test]
fn dragging_a_mean_moves_the_density_and_runs_again() {
    need_vulkan!();
    let scene = LabScene {
        components: vec![Component::isotropic(1.0, [-1.0, 0.0], 0.3)],
        measure: Measure::Point { y: [2.5, 2.5] },
        sigma_y: 1.0,
    };
    let prefs = LabPrefs {
        scene,
        density: Density::Prior,
        noised: false,
        sampler: "Exact".into(),
        particles: 200,
        ..LabPrefs::default()
    };
    let mut h = lab_window(prefs);
    let argmax = |h: &Harness<'_, PosteriorApp>| {
        let lab = &h.state().lab;
        let p = lab.picture.as_ref().unwrap();
        let k = (0..p.density.len())
            .max_by(|a, b| p.density[*a].total_cmp(&p.density[*b]))
            .unwrap();
        posterior_lab::lab::picture::cell_centre(&lab.prefs.bounds, p.grid, k / p.grid, k % p.grid)
    };
    let before = argmax(&h);
    assert!(
        (before[0] + 1.0).abs() < 0.1 && before[1].abs() < 0.1,
        "{before:?}"
    );
    let t = transform(&h);
    let runs_before = h.state().lab.run.as_ref().map(|r| r.frames.len());
    h.drag_at(t.to_screen([-1.0, 0.0]));
    h.run_steps(1);
    h.hover_at(t.to_screen([0.0, 0.5]));
    h.run_steps(1);
    h.hover_at(t.to_screen([1.0, 1.0]));
    h.run_steps(1);
    h.drop_at(t.to_screen([1.0, 1.0]));
    h.run_steps(3);
    let mean = h.state().lab.prefs.scene.components[0].mean;
    let pixel = 1.0 / f64::from(t.scale());
    assert!(
        (mean[0] - 1.0).abs() < 2.0 * pixel && (mean[1] - 1.0).abs() < 2.0 * pixel,
        "the mean follows the pointer: {mean:?}"
    );
    let after = argmax(&h);
    assert!(
        (after[0] - 1.0).abs() < 0.1 && (after[1] - 1.0).abs() < 0.1,
        "{after:?}"
    );
    // Releasing the drag ran the particles again on the new prior.
    wait_run(&mut h);
    let run = h.state().lab.run.as_ref().unwrap();
    assert!(!run.stale && runs_before.is_none());
    let post = h.state().lab.prefs.scene.scene().unwrap();
    let mean_x: f64 = run
        .frames
        .last()
        .unwrap()
        .x0
        .iter()
        .map(|p| f64::from(p[0]))
        .sum::<f64>()
        / 200.0;
    let want = post.posterior().mean(0)[0];
    assert!(
        (mean_x - want).abs() < 0.1,
        "particles follow the new posterior: {mean_x} vs {want}"
    );
}

#[test]
fn a_2d_recipe_opens_the_lab_and_bad_input_gets_one_message() {
    need_vulkan!();
    let mut h = harness(window::test_app());
    h.run_steps(2);
    let recipes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
    h.state_mut()
        .apply(Action::Dropped(recipes.join("lab-ring-dps.ron")));
    h.run_steps(2);
    assert_eq!(
        h.state().prefs.tab,
        CentralTab::Lab,
        "a 2-D mixture recipe opens the lab"
    );
    let lab = &h.state().lab;
    assert_eq!(lab.prefs.particles, 1000);
    // The recipe's sampler, as one editable line that reads back the same.
    assert!(!lab.prefs.sampler.contains('\n'), "{}", lab.prefs.sampler);
    let spec = posterior_lab::samplers::parse(&lab.prefs.sampler).unwrap();
    assert_eq!(
        spec,
        posterior_lab::samplers::parse("Dps(steps: 200)").unwrap()
    );
    assert_eq!(lab.prefs.scene.components.len(), 8);
    let Measure::Matrix { rows, y } = &lab.prefs.scene.measure else {
        panic!("the recipe's operator is kept as its matrix");
    };
    assert!((rows[0][0] - 0.6).abs() < 1e-6 && (rows[0][1] - 0.8).abs() < 1e-6);
    assert!((y[0] - 1.3).abs() < 1e-6);
    wait_run(&mut h);
    // A broken 2-D mixture: one message naming the file, the page unchanged.
    let dir = tempdir();
    std::fs::write(
        dir.join("bad.ron"),
        "(weights: [0.5, 0.5], means: [[0, 0], [1, 1]], variances: [[0.1, -0.1], [0.1, 0.1]])",
    )
    .unwrap();
    let recipe = std::fs::read_to_string(recipes.join("lab-ring-dps.ron"))
        .unwrap()
        .replace("lab-ring.ron", "bad.ron")
        .replace(
            "lab-A-1x2.npy",
            &recipes.join("lab-A-1x2.npy").display().to_string(),
        )
        .replace(
            "lab-ring-y.npy",
            &recipes.join("lab-ring-y.npy").display().to_string(),
        );
    std::fs::write(dir.join("bad-recipe.ron"), recipe).unwrap();
    let scene_before = h.state().lab.prefs.scene.clone();
    h.state_mut()
        .apply(Action::Dropped(dir.join("bad-recipe.ron")));
    h.run_steps(2);
    let errors = h.state().toasts.log.clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("bad-recipe.ron"), "{}", errors[0]);
    assert_eq!(h.state().lab.prefs.scene, scene_before);
    // A degenerate projection typed into the lab: the page says so instead of drawing.
    let mut s = scene_before.clone();
    s.measure = Measure::Matrix {
        rows: vec![[0.0, 0.0]],
        y: vec![1.0],
    };
    h.state_mut().apply(Action::Lab(LabAction::Edit {
        scene: s,
        done: true,
    }));
    h.run_steps(3);
    let lab = &h.state().lab;
    let e = lab.picture_error.clone().unwrap();
    assert!(e.contains("projection"), "{e}");
    // The edit ran the particles again: the run refuses the scene with the same message.
    let ctx = h.ctx.clone();
    h.state_mut().lab.wait_run(&ctx);
    let run_error = h
        .state()
        .lab
        .run
        .as_ref()
        .unwrap()
        .error
        .clone()
        .unwrap_or_default();
    assert!(run_error.contains("projection"), "{run_error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("posterior-lab-gui-lab-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The frame time the README quotes: 2,000 particles replaying with trails off, the posterior
/// shaded and three kinds of arrows drawn (a figure, not a timed assertion).
#[test]
fn frames_stay_fluid_with_2000_particles_and_the_arrows() {
    need_vulkan!();
    let mut prefs = LabPrefs {
        scene: examples::grid(),
        sampler: "Dps(steps: 300)".into(),
        particles: 2000,
        ..LabPrefs::default()
    };
    prefs.arrows.prior = true;
    prefs.arrows.posterior = true;
    let mut h = lab_window(prefs);
    h.state_mut().apply(Action::Lab(LabAction::Run));
    wait_run(&mut h);
    // As in the window: pictures are computed while frames go on, never awaited.
    h.state_mut().lab.await_pictures = false;
    h.state_mut().apply(Action::Lab(LabAction::TogglePlay));
    h.state_mut().apply(Action::Lab(LabAction::Seek(0)));
    h.state_mut().apply(Action::Lab(LabAction::TogglePlay));
    h.state_mut().frame_ms.clear();
    for _ in 0..120 {
        h.step();
    }
    let ms = &h.state().frame_ms;
    let p50 = posterior_lab::app::percentile(ms, 0.5);
    let p95 = posterior_lab::app::percentile(ms, 0.95);
    eprintln!(
        "2-D lab, 2000 particles, density + 3 fields, replaying: UI time per frame p50 {p50:.2} ms, p95 {p95:.2} ms over {} frames",
        ms.len()
    );
    assert!(h.state().lab.canvas.drawn_step.is_some());
}

/// A 2-D recipe through a nonlinear measurement does not open the lab (its canvas draws linear
/// scenes only) and is not turned into a wrong linear scene: it opens as a recipe, with a note.
#[test]
fn a_nonlinear_2d_recipe_opens_as_a_recipe_not_as_a_wrong_lab_scene() {
    need_vulkan!();
    let mut h = harness(window::test_app());
    h.run_steps(2);
    let before = h.state().lab.prefs.scene.clone();
    let recipes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
    h.state_mut()
        .apply(Action::Dropped(recipes.join("lab-ring-abs-exact.ron")));
    h.run_steps(2);
    assert_ne!(h.state().prefs.tab, CentralTab::Lab);
    assert!(matches!(
        h.state().mode,
        posterior_lab::app::controls::Mode::Recipe { .. }
    ));
    assert_eq!(
        h.state().lab.prefs.scene,
        before,
        "the lab's scene is unchanged"
    );
    assert!(
        h.query_by_label_contains("2-D lab shows linear measurements")
            .is_some()
    );
}
