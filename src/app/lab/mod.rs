//! The 2-D lab page: a mixture prior edited by hand, a measurement line, densities and vector
//! fields at the shown σ, and thousands of particles of any sampler, every step recorded for
//! scrubbing and replay. The lab's worker ([`crate::lab::worker`]) does the numerics; this
//! module keeps what the page shows, draws it (one file per part) and applies what the user
//! asked for after drawing.

pub mod canvas;
pub mod paint;
pub mod panel;
pub mod prefs;
pub mod timeline;

pub use prefs::{Arrows, LabPrefs};

use crate::lab::picture::{self, Bounds, Picture};
use crate::lab::run::{Frame, RunInfo, RunRequest};
use crate::lab::worker::{Command, Event, LabWorker, Wake};
use crate::lab::{Field, LabScene, examples, lessons};
use crate::samplers;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the lab's parts ask for, applied after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum LabAction {
    /// A bundled scene by name.
    Example(String),
    /// The scene was edited; `done` when the edit is finished (drag released), which re-runs.
    Edit {
        scene: LabScene,
        done: bool,
    },
    Run,
    Stop,
    TogglePlay,
    /// Show this recorded step (pauses the replay).
    Seek(usize),
    /// One recorded step further (pauses the replay).
    StepForward,
}

/// The window's run controls (buttons and keys), read as the lab's while its page is shown:
/// Run (Space) runs the particles, Pause (P) plays or pauses the replay, Step (S) steps it,
/// Stop (Esc) stops the run.
pub fn shortcut_action(a: super::Action) -> super::Action {
    use super::Action;
    match a {
        Action::Run => Action::Lab(LabAction::Run),
        Action::TogglePause | Action::Pause | Action::Resume => Action::Lab(LabAction::TogglePlay),
        Action::Step => Action::Lab(LabAction::StepForward),
        Action::Stop => Action::Lab(LabAction::Stop),
        other => other,
    }
}

/// A run as the lab follows it.
pub struct LabRunView {
    pub id: u64,
    pub sampler: String,
    pub anneals: bool,
    pub info: Option<RunInfo>,
    /// Every step received so far (frame 0 is the start).
    pub frames: Vec<Arc<Frame>>,
    pub finished: bool,
    pub error: Option<String>,
    pub seconds: f64,
    /// The scene changed since it started.
    pub stale: bool,
}

/// Where the replay is: a fractional index into the recorded frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct Playback {
    pub pos: f64,
    pub playing: bool,
}

pub struct Lab {
    pub prefs: LabPrefs,
    worker: LabWorker,
    requested: Option<picture::Request>,
    picture_key: u64,
    /// Key of the picture on screen.
    shown_key: u64,
    pub picture: Option<Arc<Picture>>,
    pub picture_error: Option<String>,
    pub density_tex: Option<egui::TextureHandle>,
    /// Field length drawn as a full cell (shared by every arrow, so lengths compare).
    pub arrow_scale: f64,
    pub run: Option<LabRunView>,
    runs: u64,
    pub playback: Playback,
    last_tick: Option<Instant>,
    /// Tests: every picture is awaited, so what is drawn is what was asked.
    pub await_pictures: bool,
    /// Canvas state between frames (the handle being dragged, where the plot was drawn).
    pub canvas: canvas::CanvasState,
    /// The sampler line last parsed and its arrow.
    arrow_for: Option<(String, Option<Field>)>,
}

impl Lab {
    pub fn new(wake: Option<Wake>, deterministic: bool) -> Self {
        Self {
            prefs: LabPrefs::default(),
            worker: LabWorker::spawn(wake),
            requested: None,
            picture_key: 0,
            shown_key: 0,
            picture: None,
            picture_error: None,
            density_tex: None,
            arrow_scale: 1.0,
            run: None,
            runs: 0,
            playback: Playback::default(),
            last_tick: None,
            await_pictures: deterministic,
            canvas: canvas::CanvasState::default(),
            arrow_for: None,
        }
    }

    /// The recorded frame on screen.
    pub fn shown(&self) -> Option<&Arc<Frame>> {
        let run = self.run.as_ref()?;
        let last = run.frames.len().checked_sub(1)?;
        run.frames
            .get((self.playback.pos.max(0.0) as usize).min(last))
    }

    /// σ of the arrows and noised densities: the shown step's for an annealed run (the lowest
    /// drawn σ once it reaches 0), else the free σ of the panel.
    pub fn sigma(&self) -> f64 {
        match (self.run.as_ref(), self.shown()) {
            (Some(r), Some(f)) if r.anneals => f.sigma.max(picture::MIN_SIGMA),
            _ => self.prefs.sigma,
        }
    }

    /// The sampler's own arrow, if it follows one (the sampler line is parsed once per edit,
    /// not every frame).
    pub fn sampler_arrow(&mut self) -> Option<Field> {
        if self.arrow_for.as_ref().map(|(line, _)| line) != Some(&self.prefs.sampler) {
            let arrow = samplers::parse(&self.prefs.sampler)
                .ok()
                .and_then(|spec| lessons::lesson(spec.name()).arrow);
            self.arrow_for = Some((self.prefs.sampler.clone(), arrow));
        }
        self.arrow_for.as_ref().and_then(|(_, arrow)| *arrow)
    }

    /// The arrows asked for, without repeats.
    pub fn fields(&mut self) -> Vec<Field> {
        let a = self.prefs.arrows;
        let mut out = vec![];
        let chosen = [
            (a.prior, Some(Field::PriorScore)),
            (a.posterior, Some(Field::PosteriorScore)),
            (a.exact_guidance, Some(Field::ExactGuidance)),
            (a.sampler, self.sampler_arrow()),
        ];
        for (on, f) in chosen {
            if let (true, Some(f)) = (on, f)
                && !out.contains(&f)
            {
                out.push(f);
            }
        }
        out
    }

    /// Takes what the worker sent, advances the replay and asks for the picture of what is
    /// now shown. Called once per frame, before drawing.
    pub fn update(&mut self, ctx: &egui::Context) {
        self.take_events(ctx);
        self.tick(ctx);
        let request = picture::Request {
            scene: self.prefs.scene.clone(),
            bounds: self.prefs.bounds,
            density: self.prefs.density,
            noised: self.prefs.noised,
            sigma: self.sigma(),
            grid: 160,
            fields: self.fields(),
            arrows: 21,
            reference: if self.prefs.reference { 2000 } else { 0 },
        };
        if self.requested.as_ref() != Some(&request) {
            self.picture_key += 1;
            self.worker.send(Command::Picture {
                key: self.picture_key,
                request: request.clone(),
            });
            self.requested = Some(request);
            if self.await_pictures {
                self.await_worker(ctx, Self::requested_done);
            }
        }
    }

    fn requested_done(&self) -> bool {
        self.shown_key == self.picture_key
    }

    /// Tests: waits (up to a minute) until `done` holds, taking the worker's events.
    fn await_worker(&mut self, ctx: &egui::Context, done: impl Fn(&Self) -> bool) {
        let t0 = Instant::now();
        while !done(self) && t0.elapsed() < Duration::from_secs(60) {
            if let Some(e) = self.worker.wait(Duration::from_millis(50)) {
                self.take_event(ctx, e);
            }
        }
    }

    /// Tests: waits until the current run has ended.
    pub fn wait_run(&mut self, ctx: &egui::Context) -> bool {
        self.await_worker(ctx, |lab| lab.run.as_ref().is_none_or(|r| r.finished));
        self.run.as_ref().is_some_and(|r| r.finished)
    }

    fn take_events(&mut self, ctx: &egui::Context) {
        for e in self.worker.events() {
            self.take_event(ctx, e);
        }
    }

    fn take_event(&mut self, ctx: &egui::Context, event: Event) {
        match event {
            Event::Picture { key, result } => {
                if key != self.picture_key {
                    return;
                }
                self.shown_key = key;
                match result {
                    Ok(p) => {
                        self.density_tex = paint::density_texture(ctx, &p);
                        self.arrow_scale = paint::arrow_scale(&p);
                        self.picture = Some(Arc::new(p));
                        self.picture_error = None;
                    }
                    Err(e) => self.picture_error = Some(e),
                }
            }
            Event::Started { id, info, first } => {
                if let Some(r) = self.run.as_mut().filter(|r| r.id == id) {
                    r.info = Some(info);
                    r.frames = vec![first];
                }
            }
            Event::Frame { id, frame } => {
                if let Some(r) = self.run.as_mut().filter(|r| r.id == id) {
                    r.frames.push(frame);
                }
            }
            Event::Finished {
                id,
                seconds,
                stopped: _,
                error,
            } => {
                if let Some(r) = self.run.as_mut().filter(|r| r.id == id) {
                    r.finished = true;
                    r.seconds = seconds;
                    r.error = error;
                }
            }
        }
    }

    /// Advances the replay by the time since the last frame.
    fn tick(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        let dt = self
            .last_tick
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64().min(0.1));
        self.last_tick = Some(now);
        let Some(run) = &self.run else {
            return;
        };
        let last = run.frames.len().saturating_sub(1) as f64;
        if self.playback.playing {
            let total = run.info.as_ref().map_or(1, |i| i.total_steps.max(1)) as f64;
            let speed = total / f64::from(self.prefs.replay_seconds.max(0.1));
            self.playback.pos = (self.playback.pos + dt * speed).min(last);
            if run.finished && self.playback.pos >= last {
                self.playback.playing = false;
            }
            ctx.request_repaint();
        }
    }

    /// Carries out one action.
    pub fn apply(&mut self, action: LabAction) {
        match action {
            LabAction::Example(name) => {
                if let Some(scene) = examples::example(&name) {
                    self.prefs.scene = scene;
                    self.prefs.bounds = Bounds::default();
                    self.start();
                }
            }
            LabAction::Edit { scene, done } => {
                if scene != self.prefs.scene {
                    self.prefs.scene = scene;
                    if let Some(r) = &mut self.run {
                        r.stale = true;
                    }
                }
                let stale = self.run.as_ref().is_none_or(|r| r.stale);
                if done && stale && self.prefs.rerun_on_edit {
                    self.start();
                }
            }
            LabAction::Run => self.start(),
            LabAction::Stop => {
                self.worker.send(Command::Stop);
            }
            LabAction::TogglePlay => {
                if let Some(r) = &self.run {
                    let last = r.frames.len().saturating_sub(1) as f64;
                    if !self.playback.playing && self.playback.pos >= last && r.finished {
                        self.playback.pos = 0.0;
                    }
                    self.playback.playing = !self.playback.playing;
                }
            }
            LabAction::Seek(k) => {
                self.playback.playing = false;
                self.playback.pos = k as f64;
            }
            LabAction::StepForward => {
                let last = self
                    .run
                    .as_ref()
                    .map_or(0, |r| r.frames.len().saturating_sub(1));
                self.playback.playing = false;
                self.playback.pos = (self.playback.pos.floor() + 1.0).min(last as f64);
            }
        }
    }

    /// Starts a run of the chosen sampler on the scene as it is (ending any other).
    pub fn start(&mut self) {
        let spec = match samplers::parse(&self.prefs.sampler) {
            Ok(s) => s,
            Err(e) => {
                self.run = Some(self.failed_run(format!("sampler: {e}")));
                return;
            }
        };
        self.runs += 1;
        let request = RunRequest {
            scene: self.prefs.scene.clone(),
            sampler: spec.clone(),
            particles: self.prefs.particles,
            seed: self.prefs.seed,
        };
        self.worker.send(Command::Run {
            id: self.runs,
            request,
        });
        self.run = Some(LabRunView {
            id: self.runs,
            sampler: self.prefs.sampler.clone(),
            anneals: spec.info().anneals,
            info: None,
            frames: vec![],
            finished: false,
            error: None,
            seconds: 0.0,
            stale: false,
        });
        self.playback = Playback {
            pos: 0.0,
            playing: true,
        };
    }

    fn failed_run(&mut self, error: String) -> LabRunView {
        self.runs += 1;
        LabRunView {
            id: self.runs,
            sampler: self.prefs.sampler.clone(),
            anneals: false,
            info: None,
            frames: vec![],
            finished: true,
            error: Some(error),
            seconds: 0.0,
            stale: false,
        }
    }

    /// Opens the lab on a scene (a recipe's), running its sampler with its chains.
    pub fn open_scene(&mut self, scene: LabScene, sampler: String, particles: usize, seed: u64) {
        self.prefs.scene = scene;
        self.prefs.sampler = sampler;
        self.prefs.particles = particles.clamp(1, crate::lab::run::MAX_PARTICLES);
        self.prefs.seed = seed;
        self.start();
    }
}
