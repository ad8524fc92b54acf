//! What the user asked for in a frame. Panels return actions while drawing; the app applies
//! them after drawing (egui demo style), so no panel touches the engine, the disk or another
//! panel's state.

/// Chains for an any-size (photo) prior when it is picked.
pub const PHOTO_CHAINS: usize = 4;

use super::dialogs::{self, Purpose};
use super::{Mode, PosteriorApp, catalog};
use crate::engine::Status;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a new run of the current choices (cancelling any other).
    Run,
    Pause,
    Resume,
    /// Pause when running, resume when paused.
    TogglePause,
    /// One step, then pause (starts a paused run when there is none).
    Step,
    Stop,
    /// Stop and forget the run: the views go back to the inputs.
    Reset,
    Undo,
    Redo,
    ClearMask,
    /// Paint (or erase) at a picture position; the stroke goes on until `EndStroke`.
    Paint([f32; 2]),
    EndStroke,
    /// The prior was changed in the panel (the picture follows it).
    PriorChanged,
    /// Go back to the prior a colour photo switched away from.
    UndoPriorSwitch,
    /// `Auto` aims at this goal; the results show what it is for (the mean or the chains).
    Aim(crate::samplers::auto::Goal),
    /// The picture (or the working size) was changed: load it again.
    ImageChanged,
    /// Switch to the designer, or to the recipe editor on the current choices.
    Designer,
    RecipeMode,
    /// Show the path window (and the platform dialog, where there is one).
    AskOpenImage,
    AskExport,
    /// Save the posterior mean as a PNG at full size.
    AskSaveResult,
    SaveResultTo(PathBuf),
    OpenImage(PathBuf),
    ExportTo(PathBuf),
    /// A file dropped on the window.
    Dropped(PathBuf),
    DroppedBytes(std::sync::Arc<[u8]>),
    /// Restart the engine on this device ("cpu" or an adapter's name; None: automatic).
    ChooseDevice(Option<String>),
    /// Read the models folders again (the model manager opened).
    RefreshModels,
    ImportModel(PathBuf),
    /// Convert a pretrained checkpoint into a model (on a worker thread).
    ImportCheckpoint(crate::checkpoint::ImportRequest),
    RemoveModel(String),
    /// Something the 2-D lab's page asked for.
    Lab(super::lab::LabAction),
}

impl PosteriorApp {
    /// Carries out one action (the window does this after drawing each frame).
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Run => self.start(),
            Action::Pause => self.pause(),
            Action::Resume => self.resume(),
            Action::TogglePause => match self.status() {
                Some(Status::Running) => self.pause(),
                Some(Status::Paused) => self.resume(),
                _ => {}
            },
            Action::Step => self.step_once(),
            Action::Stop => self.stop(),
            Action::Reset => self.reset(),
            Action::ChooseDevice(choice) => self.choose_device(choice),
            Action::RefreshModels => self.refresh_models(),
            Action::ImportModel(dir) => {
                // Checked on the CPU (loading the weights is the check), then copied.
                match crate::models::import(&dir, &burn::tensor::Device::flex()) {
                    Ok(dst) => self.toasts.note(format!("imported into {}", dst.display())),
                    Err(e) => self.toasts.error(e.to_string()),
                }
                self.refresh_models();
            }
            Action::ImportCheckpoint(req) => {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(crate::models::import_checkpoint(&req));
                });
                self.models.importing = Some(rx);
            }
            Action::RemoveModel(name) => {
                if let Some(found) = self.models.list.iter().find(|m| m.name == name) {
                    match crate::models::remove(found) {
                        Ok(()) => self.toasts.note(format!("removed {name}")),
                        Err(e) => self.toasts.error(e.to_string()),
                    }
                }
                self.models.confirm_remove = None;
                self.refresh_models();
            }
            Action::Lab(a) => self.lab.apply(a),
            Action::Undo => {
                self.mask.undo();
            }
            Action::Redo => {
                self.mask.redo();
            }
            Action::ClearMask => self.mask.clear(),
            Action::Paint(at) => self.mask.paint(at),
            Action::EndStroke => self.mask.end_stroke(),
            Action::UndoPriorSwitch => {
                if let Some(from) = self.prior_switch.take() {
                    self.setup.prior = from;
                    // As chosen by hand: this picture is not switched again.
                    self.declined_switch = Some(self.setup.image.clone());
                    self.apply(Action::PriorChanged);
                }
            }
            Action::Aim(goal) => self.aim(goal),
            Action::PriorChanged => {
                self.prior_switch = None;
                // A gallery picture made for the old prior gives way to the new prior's own.
                if catalog::gallery_bytes(&self.setup.image).is_some()
                    && let Some(p) = self.prior()
                {
                    self.setup.image = catalog::default_image(p).into();
                }
                // Photos are large: 4 chains give a mean and a spread in a few minutes on a
                // CPU (the whole-image priors keep the user's count).
                if self.prior().is_some_and(|p| p.any_size) {
                    self.setup.chains = self.setup.chains.min(PHOTO_CHAINS);
                }
                self.image_changed();
            }
            Action::ImageChanged => self.image_changed(),
            Action::Designer => self.mode = Mode::Designer,
            Action::RecipeMode => match self
                .current_recipe()
                .and_then(|(r, b)| Ok((r.to_ron()?, b)))
            {
                Ok((text, base)) => self.mode = Mode::Recipe { text, base },
                Err(e) => self
                    .toasts
                    .error(format!("the choices do not make a recipe yet: {e}")),
            },
            Action::AskOpenImage
            | Action::AskExport
            | Action::AskSaveResult
            | Action::SaveResultTo(_)
            | Action::OpenImage(_)
            | Action::Dropped(_)
            | Action::DroppedBytes(_)
            | Action::ExportTo(_) => self.apply_file(action),
        }
    }

    /// The actions that choose, read or write files.
    fn apply_file(&mut self, action: Action) {
        match action {
            Action::AskOpenImage => {
                let start = if catalog::gallery_bytes(&self.setup.image).is_some() {
                    String::new()
                } else {
                    self.setup.image.clone()
                };
                self.prompt.open(Purpose::OpenImage, start);
                if self.prompt.dialog_available {
                    self.prompt.browse_now();
                }
            }
            Action::AskExport => {
                if self.run.as_ref().is_some_and(|r| r.latest.is_some()) {
                    let dir = dialogs::default_export_folder();
                    self.prompt.open(Purpose::Export, dir.display().to_string());
                } else {
                    self.toasts.error("export: nothing has run yet");
                }
            }
            Action::AskSaveResult => {
                if self.run.as_ref().is_some_and(|r| r.latest.is_some()) {
                    let dir = dialogs::default_export_folder();
                    let file = dir.with_file_name("restored.png");
                    self.prompt
                        .open(Purpose::SaveResult, file.display().to_string());
                    if self.prompt.dialog_available {
                        self.prompt.browse_now();
                    }
                } else {
                    self.toasts.error("save result: nothing has run yet");
                }
            }
            Action::SaveResultTo(chosen) => {
                let full = std::path::absolute(&chosen).unwrap_or(chosen);
                match self.save_result(&full) {
                    Ok(p) => self
                        .toasts
                        .note(format!("saved the result to {}", p.display())),
                    Err(e) => self.toasts.error(e.to_string()),
                }
            }
            Action::Dropped(p) if p.extension().is_some_and(|e| e == "ron") => {
                self.open_recipe(&p);
            }
            Action::OpenImage(p) | Action::Dropped(p) => {
                self.setup.image = p.display().to_string();
                self.mode = Mode::Designer;
                self.image_changed();
            }
            Action::DroppedBytes(bytes) => {
                self.dropped += 1;
                let p = self.session.join(format!("dropped-image-{}", self.dropped));
                match std::fs::write(&p, &bytes[..]) {
                    Ok(()) => self.apply(Action::Dropped(p)),
                    Err(e) => self.toasts.error(format!(
                        "{}: cannot keep the dropped picture: {e}",
                        p.display()
                    )),
                }
            }
            Action::ExportTo(chosen) => {
                let dir = dialogs::export_target(&chosen);
                let full = std::path::absolute(&dir).unwrap_or(dir.clone());
                match self.export_to(&full) {
                    Ok(files) => self.toasts.note(format!(
                        "exported {} files to {}",
                        files.len(),
                        full.display()
                    )),
                    Err(e) => self.toasts.error(e.to_string()),
                }
            }
            _ => {}
        }
    }

    /// A new picture (or prior): the strokes belonged to the old one, and results of another
    /// picture are forgotten unless a run is still going (then they are marked stale).
    pub(super) fn image_changed(&mut self) {
        self.mask.clear();
        self.reload_image();
        if !matches!(self.status(), Some(Status::Running | Status::Paused)) {
            self.reset();
        }
    }

    /// Files dropped on the window become the picture.
    pub(super) fn dropped_files(ctx: &egui::Context) -> Option<Action> {
        let f = ctx.input(|i| i.raw.dropped_files.first().cloned())?;
        let path = f.path().to_path_buf();
        if path.is_file() {
            return Some(Action::Dropped(path));
        }
        f.bytes().ok().map(|b| Action::DroppedBytes(b.into()))
    }
}

impl PosteriorApp {
    /// Restarts the engine on another device; the run is forgotten (its chains lived on the
    /// old one). The old worker is shut down on a thread of its own, so the window never waits
    /// for a step in progress.
    pub fn choose_device(&mut self, choice: Option<String>) {
        let sel = match &choice {
            Some(name) => crate::backend::select_named(name),
            None => crate::backend::select(None),
        };
        match sel {
            Ok(sel) => {
                self.reset();
                let fresh = crate::engine::Engine::spawn(sel.device.clone(), self.wake.clone());
                let old = std::mem::replace(&mut self.engine, fresh);
                let _ = std::thread::Builder::new()
                    .name("posterior-lab-old-engine".into())
                    .spawn(move || old.shutdown());
                self.backend = sel.description;
                self.device = choice;
                self.toasts.note(sel.notice);
            }
            Err(e) => self.toasts.error(e.to_string()),
        }
    }

    /// The model manager's list and the designer's priors, read again from disk.
    pub fn refresh_models(&mut self) {
        self.models.list = crate::models::all();
        self.priors = catalog::priors(&self.session);
    }
}

impl PosteriorApp {
    /// `Auto` aims at `goal` (its speed kept), and the results show what that goal is for: the
    /// mean large for the best mean, the first chain large (the others a click away) for
    /// diverse samples.
    fn aim(&mut self, goal: crate::samplers::auto::Goal) {
        use super::results::Focus;
        use crate::samplers::{SamplerSpec, auto::Goal};
        let speed = match crate::samplers::parse(&self.setup.sampler) {
            Ok(SamplerSpec::Auto(p)) => p.speed,
            _ => Default::default(),
        };
        let params = crate::samplers::AutoParams { speed, goal };
        self.setup.sampler = crate::samplers::auto::line(&params);
        self.prefs.focus = Some(match goal {
            Goal::Mean => Focus::Mean,
            Goal::Diverse => Focus::Chain(0),
        });
        self.prefs.tab = super::toolbar::CentralTab::Restoration;
    }
}
