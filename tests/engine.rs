//! The engine thread: runs to the end, cancels promptly over 100 start/stop cycles with no
//! stale frame, reports a chain that goes non-finite, and holds at most one frame.
#![allow(clippy::unwrap_used)]

use posterior_lab::engine::{Command, Engine, Snapshot, Status};
use posterior_lab::recipe::Recipe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn recipes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes")
}

fn recipe(name: &str) -> Recipe {
    Recipe::from_file(&recipes().join(name)).unwrap()
}

/// Waits for a frame of `run` satisfying `pred`.
fn wait_for(engine: &Engine, run: u64, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = engine.take_snapshot() {
            assert!(
                s.run_id >= run,
                "stale frame of run {} while waiting for run {run}",
                s.run_id
            );
            if pred(&s) {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for run {run}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_run_streams_frames_and_finishes() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let run = engine.start(recipe("gmm-inpaint-dps.ron"), recipes(), false);
    let done = wait_for(&engine, run, |s| s.status == Status::Done);
    assert_eq!(done.step, done.total_steps);
    assert_eq!(done.shape, [1, 8, 8]);
    assert_eq!(done.x.len(), 16 * 64, "16 chains shown");
    assert_eq!(done.mean.len(), 64);
    assert!(
        done.mean
            .iter()
            .chain(&done.variance)
            .all(|v| v.is_finite())
    );
    // The box of missing pixels (rows 2..6, columns 1..7) is uncertain, the seen border is not.
    let var = |r: usize, c: usize| done.variance[r * 8 + c];
    assert!(
        var(3, 3) > 5.0 * var(0, 0),
        "missing {} vs seen {}",
        var(3, 3),
        var(0, 0)
    );
    assert!(done.residuals.iter().all(|r| r.is_finite()));
    // The final frame carries the uncertainty figures of the final state: principal directions
    // of every chain (not only the shown ones) whose variances sum to at most the total, and
    // the box that is uncertain in the variance is wide in the 95% interval too.
    let u = done
        .uncertainty
        .clone()
        .expect("uncertainty figures at the end");
    assert_eq!(u.step, done.step);
    assert_eq!(u.pca.chains, done.chains);
    assert_eq!(u.pca.k(), 8);
    let sum: f64 = u.pca.variances.iter().sum();
    assert!(sum <= u.pca.total_variance * (1.0 + 1e-6) && sum > 0.5 * u.pca.total_variance);
    let width = |r: usize, c: usize| u.stats.upper[r * 8 + c] - u.stats.lower[r * 8 + c];
    assert!(width(3, 3) > 2.0 * width(0, 0));
    assert_eq!(u.mean, done.mean);
    engine.shutdown();
}

#[test]
fn pause_step_and_resume() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let run = engine.start(recipe("gmm-inpaint-dps.ron"), recipes(), true);
    let first = wait_for(&engine, run, |s| s.status == Status::Paused);
    assert_eq!(first.step, 0);
    engine.send(Command::Step);
    let one = wait_for(&engine, run, |s| s.step == 1);
    assert_eq!(one.status, Status::Paused);
    engine.send(Command::Resume);
    wait_for(&engine, run, |s| s.status == Status::Done);
}

#[test]
fn hundred_start_cancel_cycles_leave_no_stale_frame() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let mut last = 0;
    for _ in 0..100 {
        last = engine.start(recipe("gmm-inpaint-dps.ron"), recipes(), false);
        engine.send(Command::Stop);
        if let Some(s) = engine.take_snapshot() {
            assert!(
                s.run_id >= last,
                "stale frame from run {} after starting {last}",
                s.run_id
            );
        }
    }
    let stopped = wait_for(&engine, last, |s| s.status == Status::Stopped);
    assert_eq!(stopped.run_id, last);
    // The worker is still the one thread, alive and responsive after the churn.
    assert!(engine.is_alive());
    let run = engine.start(recipe("gmm-inpaint-exact.ron"), recipes(), false);
    wait_for(&engine, run, |s| s.status == Status::Done);
    engine.shutdown();
}

#[test]
fn a_non_finite_chain_is_reported_and_stops_the_run() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let mut r = recipe("gmm-superres-ald.ron");
    r.sampler = Recipe::parse(
        &std::fs::read_to_string(recipes().join("gmm-superres-ald.ron"))
            .unwrap()
            .replace(
                "Ald(steps: 150, inner: 3)",
                "Ald(steps: 150, inner: 3, eps: 1.0)",
            ),
    )
    .unwrap()
    .sampler;
    let run = engine.start(r, recipes(), false);
    let failed = wait_for(&engine, run, |s| matches!(s.status, Status::Failed(_)));
    let Status::Failed(msg) = failed.status else {
        unreachable!()
    };
    // NaN, or (caught first when it comes first) estimates far outside the data range.
    assert!(
        msg.contains("non-finite") || msg.contains("diverged"),
        "{msg}"
    );
    assert!(
        engine.is_alive(),
        "a failed run must not take the engine down"
    );
}

#[test]
fn the_slot_holds_at_most_one_frame() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let run = engine.start(recipe("gmm-inpaint-dps.ron"), recipes(), false);
    // A consumer that is slow: many frames were published meanwhile, one is kept.
    std::thread::sleep(Duration::from_millis(300));
    let s = wait_for(&engine, run, |_| true);
    assert!(s.run_id == run);
    // Taking empties the slot: nothing queued behind the newest frame.
    if s.status == Status::Done {
        assert!(engine.take_snapshot().is_none());
    }
    let bad = engine.start(
        recipe("gmm-inpaint-dps.ron"),
        PathBuf::from("/nonexistent"),
        false,
    );
    let failed = wait_for(&engine, bad, |s| matches!(s.status, Status::Failed(_)));
    let Status::Failed(msg) = failed.status else {
        unreachable!()
    };
    assert!(
        msg.contains("gmm-8x8.ron"),
        "bad input names the file: {msg}"
    );
}

/// A run that panics (a bug, a backend failure) is reported as failed and the engine goes on.
#[test]
fn a_panicking_run_is_reported_and_the_engine_stays_usable() {
    // Only runs with the failpoint seed panic, so other tests are unaffected.
    // SAFETY: set once, read by the engine threads; no other code writes it.
    unsafe { std::env::set_var("POSTERIOR_LAB_FAILPOINT", "engine-panic") };
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let mut r = recipe("gmm-inpaint-dps.ron");
    r.seed = posterior_lab::engine::FAILPOINT_SEED;
    let run = engine.start(r, recipes(), false);
    let failed = wait_for(&engine, run, |s| matches!(s.status, Status::Failed(_)));
    let Status::Failed(msg) = failed.status else {
        unreachable!()
    };
    assert!(msg.contains("internal error"), "{msg}");
    assert!(engine.is_alive());
    let run = engine.start(recipe("gmm-inpaint-exact.ron"), recipes(), false);
    wait_for(&engine, run, |s| s.status == Status::Done);
    engine.shutdown();
}

/// A worker that died anyway (a panic outside a run) is noticed and replaced; the window calls
/// this on every frame and says so.
#[test]
fn a_dead_worker_is_restarted() {
    // SAFETY: set once; the engine threads only read it.
    unsafe { std::env::set_var("POSTERIOR_LAB_FAILPOINT", "engine-panic") };
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let mut r = recipe("gmm-inpaint-dps.ron");
    r.seed = posterior_lab::engine::FAILPOINT_SEED;
    let run = engine.start(r, recipes(), true);
    wait_for(&engine, run, |s| s.status == Status::Paused);
    engine.send(Command::Stop);
    let t0 = Instant::now();
    while engine.is_alive() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!engine.is_alive(), "the failpoint ends the worker");
    assert!(engine.ensure_alive(), "a dead worker is replaced");
    assert!(!engine.ensure_alive(), "a live one is left alone");
    let run = engine.start(recipe("gmm-inpaint-exact.ron"), recipes(), false);
    wait_for(&engine, run, |s| s.status == Status::Done);
    engine.shutdown();
}

/// A network run shows a classical first answer (here bicubic upscaling of y) as its mean
/// until the first step, then the chains' own mean.
#[test]
fn a_photo_run_shows_a_first_answer_then_the_chains() {
    let mut engine = Engine::spawn(burn::tensor::Device::flex(), None);
    let run = engine.start(recipe("photo-superres-ddrm.ron"), recipes(), true);
    let first = wait_for(&engine, run, |s| s.status == Status::Paused);
    assert_eq!(first.step, 0);
    let inputs = first.inputs.clone().unwrap();
    let (answer, name) = inputs.first_answer.clone().unwrap();
    assert_eq!(name, "bicubic");
    assert_eq!(first.mean, answer);
    let truth = inputs.truth.clone().unwrap();
    let p_first = posterior_lab::metrics::psnr(&first.mean, &truth);
    assert!(p_first > 20.0, "bicubic first answer {p_first:.2} dB");
    engine.send(Command::Step);
    let next = wait_for(&engine, run, |s| s.step == 1);
    assert_ne!(next.mean, answer, "after a step the mean is the chains'");
    engine.send(Command::Stop);
}
