//! The lab's worker thread: it computes pictures (densities, arrows) and runs samplers, so the
//! window never does numerics in a frame. Commands go down one channel; events come back on
//! another, every recorded step among them (the window keeps them all for scrubbing). Between
//! two steps of a run the worker serves the newest picture request, so dragging a mean during a
//! run still redraws at once; a new run or Stop ends the current one at the next step.

use super::picture::{Picture, Request};
use super::run::{Frame, LabRun, RunInfo, RunRequest};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::Instant;

pub type Wake = Arc<dyn Fn() + Send + Sync>;

pub enum Command {
    /// Compute a picture; `key` comes back with it (only the newest pending one is computed).
    Picture {
        key: u64,
        request: Request,
    },
    /// Start a run (ending any other); `id` tags its events.
    Run {
        id: u64,
        request: RunRequest,
    },
    Stop,
}

pub enum Event {
    Picture {
        key: u64,
        result: Result<Picture, String>,
    },
    Started {
        id: u64,
        info: RunInfo,
        first: Arc<Frame>,
    },
    Frame {
        id: u64,
        frame: Arc<Frame>,
    },
    /// The run ended: done, stopped (`error` None, `stopped` true) or failed.
    Finished {
        id: u64,
        seconds: f64,
        stopped: bool,
        error: Option<String>,
    },
}

pub struct LabWorker {
    tx: Option<Sender<Command>>,
    rx: Receiver<Event>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LabWorker {
    pub fn spawn(wake: Option<Wake>) -> Self {
        let (tx, commands) = mpsc::channel();
        let (events, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("posterior-lab-2d".into())
            .spawn(move || serve(commands, events, wake))
            .ok();
        Self {
            tx: Some(tx),
            rx,
            handle,
        }
    }

    /// Sends a command; false when the worker is gone.
    pub fn send(&self, command: Command) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(command).is_ok())
    }

    /// Every event since the last call, without waiting.
    pub fn events(&self) -> Vec<Event> {
        self.rx.try_iter().collect()
    }

    /// Waits for the next event up to `timeout` (tests).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for LabWorker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Active {
    id: u64,
    run: LabRun,
    t0: Instant,
}

fn serve(commands: Receiver<Command>, events: Sender<Event>, wake: Option<Wake>) {
    let device = burn::tensor::Device::flex();
    let mut active: Option<Active> = None;
    let mut picture: Option<(u64, Request)> = None;
    let notify = || {
        if let Some(w) = &wake {
            w();
        }
    };
    loop {
        // Block only when there is nothing to do; then take every pending command, so a burst
        // of edits starts one run and computes one picture.
        let mut pending = vec![];
        if active.is_none() && picture.is_none() {
            match commands.recv() {
                Ok(c) => pending.push(c),
                Err(_) => return,
            }
        }
        loop {
            match commands.try_recv() {
                Ok(c) => pending.push(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let last_run = pending
            .iter()
            .rposition(|c| matches!(c, Command::Run { .. } | Command::Stop));
        for (i, command) in pending.into_iter().enumerate() {
            match command {
                Command::Picture { key, request } => picture = Some((key, request)),
                Command::Stop => finish(&events, active.take(), true, None),
                Command::Run { id, request } => {
                    finish(&events, active.take(), true, None);
                    if Some(i) != last_run {
                        // Superseded before it began.
                        finish_failed(&events, id, None);
                        continue;
                    }
                    let t0 = Instant::now();
                    match guarded(|| LabRun::start(&request, &device).map_err(|e| e.to_string())) {
                        Ok((run, info, first)) => {
                            let _ = events.send(Event::Started {
                                id,
                                info,
                                first: Arc::new(first),
                            });
                            active = Some(Active { id, run, t0 });
                        }
                        Err(e) => finish_failed(&events, id, Some(e)),
                    }
                    notify();
                }
            }
        }
        if let Some((key, request)) = picture.take() {
            let result = guarded(|| request.compute().map_err(|e| e.to_string()));
            let _ = events.send(Event::Picture { key, result });
            notify();
            continue;
        }
        if let Some(mut a) = active.take() {
            match guarded(|| a.run.step().map_err(|e| e.to_string())) {
                Ok(frame) => {
                    let _ = events.send(Event::Frame {
                        id: a.id,
                        frame: Arc::new(frame),
                    });
                    if a.run.is_done() {
                        finish(&events, Some(a), false, None);
                    } else {
                        active = Some(a);
                    }
                }
                Err(e) => finish(&events, Some(a), false, Some(e)),
            }
            notify();
        }
    }
}

/// Runs `f`, turning a panic into a message (the worker keeps serving).
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown".into());
        Err(format!("internal error in the 2-D lab: {what}"))
    })
}

fn finish(events: &Sender<Event>, active: Option<Active>, stopped: bool, error: Option<String>) {
    if let Some(a) = active {
        let _ = events.send(Event::Finished {
            id: a.id,
            seconds: a.t0.elapsed().as_secs_f64(),
            stopped,
            error,
        });
    }
}

/// A run that never started: superseded (`error` None) or refused.
fn finish_failed(events: &Sender<Event>, id: u64, error: Option<String>) {
    let _ = events.send(Event::Finished {
        id,
        seconds: 0.0,
        stopped: error.is_none(),
        error,
    });
}
