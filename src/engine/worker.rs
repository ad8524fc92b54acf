//! The worker thread and its handle.

use super::snapshot::{RunInputs, Snapshot, Status, TracePoint, UncertaintyFrame};
use crate::error::{Error, Result};
use crate::metrics;
use crate::recipe::{self, Loaded, Recipe};
use crate::samplers::{self, Sampler};
use crate::tensor;
use burn::tensor::Device;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Orders to the engine.
pub enum Command {
    /// Load the recipe (paths relative to `base`) and start sampling as run `run_id`.
    Start {
        run_id: u64,
        recipe: Box<Recipe>,
        base: PathBuf,
        paused: bool,
    },
    Pause,
    Resume,
    /// One step, then pause.
    Step,
    /// Cancel the current run.
    Stop,
    Shutdown,
}

/// At most this many frames per second reach the screen.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// Chains whose images travel in a snapshot.
const SHOWN_CHAINS: usize = 16;
/// Chains whose residual is traced at every step.
const TRACED_CHAINS: usize = 8;
/// Principal components the window gets.
pub const SHOWN_COMPONENTS: usize = 8;
/// Uncertainty figures are refreshed at most this often while a run goes, and so that their
/// cost stays under a tenth of the sampling time.
const UNCERTAINTY_INTERVAL: Duration = Duration::from_millis(500);

type Slot = Arc<Mutex<Option<Snapshot>>>;
/// Called after each published frame (the window passes a repaint request).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The caller's handle: send commands, take the newest snapshot.
pub struct Engine {
    device: Device,
    wake: Option<Wake>,
    tx: Sender<Command>,
    slot: Slot,
    current: Arc<AtomicU64>,
    next_run: u64,
    handle: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the worker on `device`. `wake` is called after each published frame (the window
    /// passes a repaint request).
    pub fn spawn(device: Device, wake: Option<Wake>) -> Self {
        let slot: Slot = Arc::new(Mutex::new(None));
        let current = Arc::new(AtomicU64::new(0));
        let (tx, handle) = start_worker(&device, &slot, &wake);
        Self {
            device,
            wake,
            tx,
            slot,
            current,
            next_run: 1,
            handle,
        }
    }

    /// Starts a fresh worker when the old one is gone (it never should be: runs that panic are
    /// caught and reported as failed); true when it had to.
    pub fn ensure_alive(&mut self) -> bool {
        if self.is_alive() {
            return false;
        }
        if let Some(h) = self.handle.take() {
            // Its panic has been reported by the panic hook; nothing else to collect.
            let _ = h.join();
        }
        let (tx, handle) = start_worker(&self.device, &self.slot, &self.wake);
        self.tx = tx;
        self.handle = handle;
        true
    }

    /// Starts a new run (cancelling any other); returns its id.
    pub fn start(&mut self, recipe: Recipe, base: PathBuf, paused: bool) -> u64 {
        let run_id = self.next_run;
        self.next_run += 1;
        // From now on frames of older runs are dropped, even one already in the slot.
        self.current.store(run_id, Ordering::SeqCst);
        if let Ok(mut s) = self.slot.lock() {
            *s = None;
        }
        self.send(Command::Start {
            run_id,
            recipe: Box::new(recipe),
            base,
            paused,
        });
        run_id
    }

    pub fn send(&self, cmd: Command) {
        // A worker that is gone has already reported why in its last snapshot.
        let _ = self.tx.send(cmd);
    }

    /// The newest frame of the current run, if a new one arrived since the last call.
    pub fn take_snapshot(&self) -> Option<Snapshot> {
        let snap = self.slot.lock().ok()?.take()?;
        (snap.run_id >= self.current.load(Ordering::SeqCst)).then_some(snap)
    }

    /// Whether the worker thread is still alive.
    pub fn is_alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the worker and waits for it (it checks for commands between steps).
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn start_worker(
    device: &Device,
    slot: &Slot,
    wake: &Option<Wake>,
) -> (Sender<Command>, Option<JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel();
    let worker = Worker {
        device: device.clone(),
        rx,
        slot: slot.clone(),
        wake: wake.clone(),
        run: None,
    };
    let handle = std::thread::Builder::new()
        .name("posterior-lab-engine".into())
        .spawn(move || worker.run_loop())
        .ok();
    (tx, handle)
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

struct Run {
    id: u64,
    loaded: Loaded,
    sampler: Box<dyn Sampler>,
    paused: bool,
    /// Time spent in steps (pauses and idle waits excluded).
    busy: Duration,
    steps_done_here: usize,
    inputs: Arc<RunInputs>,
    trace: Arc<Vec<TracePoint>>,
    uncertainty: Option<Arc<UncertaintyFrame>>,
    /// When the uncertainty figures are next due while running.
    uncertainty_due: Instant,
}

struct Worker {
    device: Device,
    rx: Receiver<Command>,
    slot: Slot,
    wake: Option<Wake>,
    run: Option<Run>,
}

impl Worker {
    fn run_loop(mut self) {
        let mut last_frame = Instant::now() - FRAME_INTERVAL;
        loop {
            let active = self
                .run
                .as_ref()
                .is_some_and(|r| !r.paused && !r.sampler.is_done());
            // Idle or paused: sleep on the channel. Running: only drain what is there.
            let cmd = if active {
                match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            if let Some(cmd) = cmd {
                if !self.handle(cmd) {
                    return;
                }
                continue;
            }
            self.step_and_publish(&mut last_frame);
        }
    }

    /// Applies a command; false means shut down.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Shutdown => return false,
            Command::Start {
                run_id,
                recipe,
                base,
                paused,
            } => {
                self.run = None;
                let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.begin(run_id, *recipe, &base, paused)
                }))
                .unwrap_or_else(|p| Err(internal_error(p)));
                match started {
                    Ok(run) => {
                        self.run = Some(run);
                        self.publish(if paused {
                            Status::Paused
                        } else {
                            Status::Running
                        });
                    }
                    Err(e) => self.publish_failure(run_id, &e),
                }
            }
            Command::Pause => {
                if let Some(r) = &mut self.run {
                    r.paused = true;
                }
                self.publish(Status::Paused);
            }
            Command::Resume => {
                if let Some(r) = &mut self.run {
                    r.paused = false;
                }
            }
            Command::Step => {
                if let Some(r) = &mut self.run {
                    r.paused = true;
                }
                let mut never = Instant::now() - FRAME_INTERVAL;
                self.step_and_publish(&mut never);
            }
            Command::Stop => {
                // Failpoint outside any catch: the worker thread dies (tests of the restart).
                if let Some(r) = &self.run
                    && r.paused
                {
                    failpoint(r.loaded.recipe.seed);
                }
                self.publish(Status::Stopped);
                self.run = None;
            }
        }
        true
    }

    fn begin(&self, id: u64, recipe: Recipe, base: &std::path::Path, paused: bool) -> Result<Run> {
        let loaded = recipe::load_recipe(recipe, base, &self.device)?;
        let sampler = samplers::build(
            &loaded.recipe.sampler,
            &loaded.problem,
            loaded.recipe.chains,
            loaded.recipe.seed,
        )?;
        let inputs = Arc::new(run_inputs(&loaded, sampler.as_ref())?);
        Ok(Run {
            id,
            inputs,
            loaded,
            sampler,
            paused,
            busy: Duration::ZERO,
            steps_done_here: 0,
            trace: Arc::new(vec![]),
            uncertainty: None,
            uncertainty_due: Instant::now(),
        })
    }

    fn step_and_publish(&mut self, last_frame: &mut Instant) {
        let Some(run) = &mut self.run else { return };
        if run.sampler.is_done() {
            return;
        }
        let t0 = Instant::now();
        // A panic inside a step (a bug, or a backend failure) ends this run, not the engine.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            failpoint(run.loaded.recipe.seed);
            run.sampler
                .step(&run.loaded.problem)
                .and_then(|_| {
                    let (s, p) = (run.sampler.as_ref(), &run.loaded.problem);
                    samplers::check_state(s.name(), s.state(), p)
                })
                .and_then(|_| trace_point(run))
        }))
        .unwrap_or_else(|p| Err(internal_error(p)));
        run.busy += t0.elapsed();
        run.steps_done_here += 1;
        if let Err(e) = outcome {
            let id = run.id;
            self.run = None;
            self.publish_failure(id, &e);
            return;
        }
        let done = run.sampler.is_done();
        let paused = run.paused;
        if done || paused || last_frame.elapsed() >= FRAME_INTERVAL {
            *last_frame = Instant::now();
            self.publish(if done {
                Status::Done
            } else if paused {
                Status::Paused
            } else {
                Status::Running
            });
        }
    }

    fn publish_failure(&self, run_id: u64, e: &Error) {
        let snap = Snapshot {
            run_id,
            status: Status::Failed(e.to_string()),
            shape: [0; 3],
            chains: 0,
            step: 0,
            total_steps: 0,
            sigma: 0.0,
            nfe: 0,
            steps_per_second: 0.0,
            busy_seconds: 0.0,
            x: vec![],
            x0_hat: vec![],
            mean: vec![],
            variance: vec![],
            residuals: vec![],
            inputs: None,
            psnr: None,
            trace: Arc::new(vec![]),
            uncertainty: None,
        };
        self.put(snap);
    }

    fn publish(&mut self, status: Status) {
        let Some(run) = &mut self.run else { return };
        match frame(run, status) {
            Ok(snap) => self.put(snap),
            Err(e) => {
                let id = run.id;
                self.publish_failure(id, &e);
            }
        }
    }

    fn put(&self, snap: Snapshot) {
        if let Ok(mut s) = self.slot.lock() {
            *s = Some(snap);
        }
        if let Some(w) = &self.wake {
            w();
        }
    }
}

/// The seed that, with `POSTERIOR_LAB_FAILPOINT=engine-panic` in the environment, makes a step
/// panic (caught: the run fails) and a Stop of a paused run panic (uncaught: the worker dies):
/// how the tests check that the engine stays usable and that a dead worker is restarted.
pub const FAILPOINT_SEED: u64 = 0xDEAD_BEEF;

fn failpoint(seed: u64) {
    if seed == FAILPOINT_SEED
        && std::env::var_os("POSTERIOR_LAB_FAILPOINT").is_some_and(|v| v == "engine-panic")
    {
        panic!("failpoint engine-panic");
    }
}

/// A caught panic as an error the user sees.
fn internal_error(payload: Box<dyn std::any::Any + Send>) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Error::Backend(format!(
        "internal error in the engine ({what}); the run was stopped, the engine is still usable"
    ))
}

/// Reads the chains back and summarises them for the screen; refreshes the uncertainty
/// figures when they are due (always when the run stops moving).
fn frame(run: &mut Run, status: Status) -> Result<Snapshot> {
    let state = run.sampler.state();
    let problem = &run.loaded.problem;
    let shape = problem.shape();
    let d = problem.dim();
    let chains = state.x.dims()[0];
    let x0 = tensor::to_vec(&state.x0_hat)?;
    let x = tensor::to_vec(&state.x)?;
    let shown = chains.min(SHOWN_CHAINS);
    let (mean, variance) = match &run.inputs.first_answer {
        Some((answer, _)) if state.step == 0 && answer.len() == d => (answer.clone(), vec![0.0; d]),
        _ => metrics::mean_variance(&x0, chains),
    };
    let residuals = problem.normalized_residuals(&state.x0_hat)?;
    let secs = run.busy.as_secs_f64();
    let psnr = run.inputs.truth.as_ref().map(|t| metrics::psnr(&mean, t));
    let stale = run
        .uncertainty
        .as_ref()
        .is_none_or(|u| u.step != state.step);
    let showing_first_answer = state.step == 0 && run.inputs.first_answer.is_some();
    if stale
        && !showing_first_answer
        && (status != Status::Running || Instant::now() >= run.uncertainty_due)
    {
        let t0 = Instant::now();
        // A failure here is a bug in the figures, not in the run: keep sampling without them.
        if let Ok(u) = uncertainty_frame(&x0, chains, [&mean, &variance], state.step, &run.inputs) {
            let took = t0.elapsed();
            run.uncertainty = Some(Arc::new(UncertaintyFrame {
                seconds: took.as_secs_f64(),
                ..u
            }));
            run.uncertainty_due = Instant::now() + UNCERTAINTY_INTERVAL.max(took * 10);
        }
    }
    Ok(Snapshot {
        run_id: run.id,
        status,
        shape,
        chains,
        step: state.step,
        total_steps: state.total_steps,
        sigma: state.sigma,
        nfe: state.nfe,
        steps_per_second: if secs > 0.0 {
            run.steps_done_here as f64 / secs
        } else {
            0.0
        },
        busy_seconds: secs,
        x: x[..shown * d].to_vec(),
        x0_hat: x0[..shown * d].to_vec(),
        mean,
        variance,
        residuals,
        inputs: Some(run.inputs.clone()),
        psnr,
        trace: run.trace.clone(),
        uncertainty: run.uncertainty.clone(),
    })
}

fn uncertainty_frame(
    x0: &[f32],
    chains: usize,
    [mean, variance]: [&[f32]; 2],
    step: usize,
    inputs: &RunInputs,
) -> Result<UncertaintyFrame> {
    let k = SHOWN_COMPONENTS.min(chains.saturating_sub(1));
    Ok(UncertaintyFrame {
        step,
        mean: mean.to_vec(),
        variance: variance.to_vec(),
        pca: crate::uncertainty::pca(x0, chains, k)?,
        stats: crate::uncertainty::pixel_stats(
            x0,
            chains,
            inputs.truth.as_deref(),
            Some(&inputs.seen),
        )?,
        seconds: 0.0,
    })
}

/// Appends the step just taken to the run's trace: σ, the first chains' residuals, and the
/// PSNR of the mean when the truth is known (a mean over chains on the device, one read-back).
fn trace_point(run: &mut Run) -> Result<()> {
    let state = run.sampler.state();
    let problem = &run.loaded.problem;
    let chains = state.x0_hat.dims()[0];
    let shown = state.x0_hat.clone().narrow(0, 0, chains.min(TRACED_CHAINS));
    let residuals = problem.normalized_residuals(&shown)?;
    let psnr = match &run.inputs.truth {
        Some(t) => {
            let mean = tensor::to_vec(&state.x0_hat.clone().mean_dim(0))?;
            Some(metrics::psnr(&mean, t))
        }
        None => None,
    };
    Arc::make_mut(&mut run.trace).push(TracePoint {
        step: state.step,
        sigma: state.sigma,
        residuals,
        psnr,
    });
    Ok(())
}

/// The run's truth and y, in x's image space, for the screen.
fn run_inputs(loaded: &Loaded, sampler: &dyn Sampler) -> Result<RunInputs> {
    let p = &loaded.problem;
    let (y_view, seen) = crate::operators::display_measurement(p.operator.as_ref(), p.y.clone())?;
    // A network's run takes a while: a classical answer is shown until its first step. A
    // failure here costs only that picture.
    let first_answer = match p.prior.gmm() {
        Some(_) => None,
        None => p.classical_answer().ok().flatten(),
    };
    Ok(RunInputs {
        first_answer,
        truth: loaded.truth.clone(),
        y_view,
        seen,
        prior: p.prior.describe(),
        operator: p.operator.name(),
        sampler: loaded.recipe.sampler.name().to_string(),
        detail: sampler.detail(),
        anneals: sampler.info().anneals,
        spread_calibration: crate::calibration::for_run(
            p,
            &loaded.recipe.sampler,
            sampler.detail().as_deref(),
        ),
    })
}
