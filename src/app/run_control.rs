//! Run control: starting, pausing, stepping and stopping runs of the current choices, following
//! their newest frame, and exporting them.

use super::textures::RunTextures;
use super::{Mode, PosteriorApp, RunView, export};
use crate::engine::{Command, Status};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

impl PosteriorApp {
    /// The current preview's share of a patch prior's tiles that hold a hole, when the chosen
    /// prior is one (the time estimate's damage).
    pub(super) fn damage_share(&self) -> Option<f64> {
        let any_size = self.prior().is_some_and(|p| p.any_size);
        (self.preview.as_ref())
            .and_then(|m| m.damage_share)
            .filter(|_| any_size)
    }

    fn begin(&mut self, paused: bool) -> bool {
        let choices = match self.mode {
            Mode::Designer => self.choices_key(),
            Mode::Recipe { .. } => None,
        };
        let damage_share = match self.mode {
            Mode::Designer => self.damage_share(),
            Mode::Recipe { .. } => None,
        };
        match self.current_recipe() {
            Ok((recipe, base)) => {
                let id = self.engine.start(recipe.clone(), base.clone(), paused);
                self.run = Some(RunView {
                    id,
                    recipe,
                    base,
                    latest: None,
                    choices,
                    damage_share,
                });
                self.tex = RunTextures::default();
                true
            }
            Err(e) => {
                self.toasts.error(e.to_string());
                false
            }
        }
    }

    /// Run: starts a new run of the current choices (cancelling any other).
    pub fn start(&mut self) {
        self.begin(false);
    }
    pub fn pause(&mut self) {
        self.engine.send(Command::Pause);
    }
    pub fn resume(&mut self) {
        self.engine.send(Command::Resume);
    }
    /// One step, then pause; on no run (or a finished one) a new run starts paused.
    pub fn step_once(&mut self) {
        let active = matches!(self.status(), Some(Status::Running | Status::Paused))
            || self.run.as_ref().is_some_and(|r| r.latest.is_none());
        if !active && !self.begin(true) {
            return;
        }
        self.engine.send(Command::Step);
    }
    pub fn stop(&mut self) {
        self.engine.send(Command::Stop);
    }
    /// Reset: stop and forget the run (the views go back to the inputs).
    pub fn reset(&mut self) {
        self.engine.send(Command::Stop);
        self.run = None;
        self.tex = RunTextures::default();
    }

    pub fn status(&self) -> Option<&Status> {
        self.run.as_ref()?.latest.as_ref().map(|s| &s.status)
    }

    /// Whether the run's results no longer match the panel's choices.
    pub fn results_are_stale(&self) -> bool {
        match (&self.mode, &self.run) {
            (Mode::Designer, Some(r)) => r.choices.is_some() && r.choices != self.choices_key(),
            _ => false,
        }
    }

    /// Takes the newest snapshot, if any (never blocks).
    pub fn poll(&mut self) {
        if self.engine.ensure_alive() {
            self.toasts.error(
                "the engine stopped unexpectedly and was restarted; press Run to start again",
            );
            self.run = None;
        }
        let Some(snap) = self.engine.take_snapshot() else {
            return;
        };
        let Some(run) = &mut self.run else { return };
        if snap.run_id != run.id {
            return;
        }
        if let Status::Failed(msg) = &snap.status {
            self.toasts.error(format!("run failed: {msg}"));
        }
        // A run that finished teaches the estimate this machine's speed.
        let finished = snap.status == Status::Done
            && !run
                .latest
                .as_ref()
                .is_some_and(|l| l.status == Status::Done);
        if finished
            && let Some(predicted) = super::estimate::predict_recipe(
                &self.speed,
                &run.recipe,
                self.priors.iter().find(|p| p.spec == run.recipe.prior),
                run.damage_share,
            )
        {
            self.speed.learn(predicted, snap.busy_seconds);
        }
        run.latest = Some(std::sync::Arc::new(snap));
    }

    /// Waits (tests only) until the run is finished or `timeout` passes.
    pub fn wait_done(&mut self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            self.poll();
            match self.status() {
                Some(Status::Done | Status::Stopped | Status::Failed(_)) => return true,
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        false
    }

    /// Writes PNGs, arrays and the recipe of the current run into `dir`.
    pub fn export_to(&mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        let run = self
            .run
            .as_ref()
            .ok_or_else(|| Error::invalid("export", "nothing has run yet"))?;
        let snap = run
            .latest
            .as_ref()
            .ok_or_else(|| Error::invalid("export", "the run has not produced a frame yet"))?;
        if snap.shape.contains(&0) {
            return Err(Error::invalid(
                "export",
                "the run failed: there is nothing to export",
            ));
        }
        let files = export::write(dir, &run.recipe, &run.base, snap)?;
        self.last_export = Some(dir.to_path_buf());
        Ok(files)
    }

    /// Saves the posterior mean as a PNG at the size it was restored at (for a real low-
    /// resolution y: the upscaled size). An existing file is never overwritten: the name gets
    /// a number. Returns the path written.
    pub fn save_result(&mut self, chosen: &Path) -> Result<PathBuf> {
        let snap = self
            .run
            .as_ref()
            .and_then(|r| r.latest.as_ref())
            .filter(|s| !s.shape.contains(&0) && !s.mean.is_empty())
            .ok_or_else(|| Error::invalid("save result", "no run has produced a mean yet"))?;
        let [c, ..] = snap.shape;
        if c != 1 && c != 3 {
            return Err(Error::invalid(
                "save result",
                format!("{c}-channel results are not pictures: use Export… for the arrays"),
            ));
        }
        let path = export::free_png_path(chosen);
        crate::image_io::save_png(&crate::image_io::to_rgb(&snap.mean, snap.shape), &path)?;
        Ok(path)
    }
}
