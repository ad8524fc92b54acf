//! The window: load a picture, degrade it, pick a prior and a sampler, and watch the chains, their
//! mean and their spread evolve. The engine thread does all the numerics and a preview worker
//! simulates y; this thread only draws, collects what the user asked for ([`Action`]s, one file
//! per panel) and applies it after drawing. It never waits on the engine.
//!
//! State is split as in egui's demo app: [`Persisted`] (the choices, saved between launches)
//! apart from the runtime state (engine, run, textures, dialogs).

pub mod about;
pub mod actions;
pub mod catalog;
pub mod controls;
pub mod designer;
pub mod dialogs;
pub mod export;
pub mod mask_editor;
pub mod plots;
pub mod preview;
pub mod results;
pub mod setup;
pub mod status_bar;
pub mod textures;
pub mod toasts;
pub mod toolbar;
pub mod views;

use crate::backend::{self, BackendKind};
use crate::engine::{Command, Engine, Snapshot, Status};
use crate::error::{Error, Result};
use crate::recipe::Recipe;
pub use actions::Action;
use catalog::{PriorEntry, WorkingImage};
pub use controls::Mode;
use dialogs::{Choice, PathPrompt, Purpose};
use mask_editor::MaskEditor;
use preview::{Measurement, PreviewWorker};
use setup::{OpKind, Setup};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use textures::{PreviewTextures, RunTextures};
use toasts::Toasts;
use toolbar::ViewPrefs;
use views::ViewWindow;

/// How the window was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub recipe: Option<PathBuf>,
    pub autorun: bool,
    pub backend: Option<BackendKind>,
    /// Tests: no timing figures on screen, no settings read or written, previews awaited.
    pub deterministic: bool,
}

/// What is saved between launches.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Persisted {
    pub setup: Setup,
    pub prefs: ViewPrefs,
    /// Longer side of the working picture for any-size (patch) priors.
    pub working_side: usize,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            setup: Setup::default(),
            prefs: ViewPrefs::default(),
            working_side: 128,
        }
    }
}

/// A run as the window follows it.
pub struct RunView {
    pub id: u64,
    pub recipe: Recipe,
    pub base: PathBuf,
    pub latest: Option<Snapshot>,
    /// The choices it was started from (None: a recipe run as written).
    choices: Option<u64>,
}

/// The application state (eframe::App).
pub struct PosteriorApp {
    pub setup: Setup,
    pub prefs: ViewPrefs,
    pub working_side: usize,
    pub mode: Mode,
    engine: Engine,
    pub backend: String,
    session: PathBuf,
    pub priors: Vec<PriorEntry>,
    pub mask: MaskEditor,
    pub image: Option<Arc<WorkingImage>>,
    pub run: Option<RunView>,
    previewer: PreviewWorker,
    /// Key of the choices the preview was asked for, and the newest preview of them.
    preview_key: Option<u64>,
    pub preview: Option<Measurement>,
    preview_tex: PreviewTextures,
    truth_key: Option<u64>,
    tex: RunTextures,
    window: ViewWindow,
    compare: f32,
    pub toasts: Toasts,
    pub frame_ms: Vec<f32>,
    deterministic: bool,
    autorun: bool,
    runs: u64,
    dropped: u64,
    pub last_export: Option<PathBuf>,
    pub show_about: bool,
    pub prompt: PathPrompt,
    /// Where the views were drawn in the last frame.
    pub layout: results::Layout,
}

impl PosteriorApp {
    /// Builds the app: picks the backend, starts the engine, loads the recipe or the default.
    /// A recipe that cannot be read is reported in the window, which opens on the designer.
    pub fn new(cc: &eframe::CreationContext<'_>, opts: Options) -> Result<Self> {
        let sel = backend::select(opts.backend)?;
        let ctx = cc.egui_ctx.clone();
        let engine = Engine::spawn(
            sel.device.clone(),
            Some(Box::new(move || ctx.request_repaint())),
        );
        let ctx = cc.egui_ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
        let mut app = Self::build(
            engine,
            sel.description.clone(),
            opts.deterministic,
            Some(wake),
        )?;
        if !opts.deterministic
            && let Some(storage) = cc.storage
            && let Some(saved) = eframe::get_value::<Persisted>(storage, eframe::APP_KEY)
        {
            app.setup = saved.setup;
            app.prefs = saved.prefs;
            app.working_side = saved.working_side.clamp(32, 512);
            app.reload_image();
        }
        if let Some(path) = &opts.recipe
            && let Err(e) = app.load_recipe_file(path)
        {
            app.toasts.error(e.to_string());
        }
        app.autorun = opts.autorun;
        Ok(app)
    }

    /// The app around an existing engine (tests build it this way).
    pub fn with_engine(engine: Engine, backend: String, deterministic: bool) -> Result<Self> {
        Self::build(engine, backend, deterministic, None)
    }

    fn build(
        engine: Engine,
        backend: String,
        deterministic: bool,
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Result<Self> {
        // One folder per window (tests run several in one process).
        static INSTANCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let session =
            std::env::temp_dir().join(format!("posterior-lab-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&session)
            .map_err(|e| Error::file(&session, format!("cannot create: {e}")))?;
        let priors = catalog::priors(&session);
        let saved = Persisted::default();
        let mut app = Self {
            setup: saved.setup,
            prefs: saved.prefs,
            working_side: saved.working_side,
            mode: Mode::Designer,
            engine,
            backend,
            session,
            priors,
            mask: MaskEditor::new(),
            image: None,
            run: None,
            previewer: PreviewWorker::spawn(wake),
            preview_key: None,
            preview: None,
            preview_tex: PreviewTextures::default(),
            truth_key: None,
            tex: RunTextures::default(),
            window: ViewWindow::default(),
            compare: 0.5,
            toasts: Toasts::default(),
            frame_ms: vec![],
            deterministic,
            autorun: false,
            runs: 0,
            dropped: 0,
            last_export: None,
            show_about: false,
            prompt: PathPrompt::default(),
            layout: results::Layout::default(),
        };
        app.reload_image();
        Ok(app)
    }

    fn load_recipe_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read recipe: {e}")))?;
        Recipe::parse(&text).map_err(|e| Error::file(path, format!("not a valid recipe: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.mode = Mode::Recipe { text, base };
        Ok(())
    }

    pub fn prior(&self) -> Option<&PriorEntry> {
        self.priors
            .iter()
            .find(|p| p.name == self.setup.prior)
            .or(self.priors.first())
    }

    /// Re-reads the chosen picture into the prior's working shape.
    pub fn reload_image(&mut self) {
        let Some(prior) = self.prior().cloned() else {
            self.image = None;
            return;
        };
        let name = self.setup.image.clone();
        let bytes = match catalog::gallery_bytes(&name) {
            Some(b) => Ok(b.to_vec()),
            None => std::fs::read(&name),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                self.toasts.error(format!("{name}: cannot read image: {e}"));
                // Back to the prior's own gallery picture.
                self.setup.image = catalog::default_image(&prior).into();
                if catalog::gallery_bytes(&self.setup.image).is_some() {
                    self.reload_image();
                }
                return;
            }
        };
        match catalog::working_image(
            &bytes,
            &name,
            prior.shape,
            prior.any_size,
            self.working_side,
        ) {
            Ok(img) => self.image = Some(Arc::new(img)),
            Err(e) => self.toasts.error(e.to_string()),
        }
    }

    /// A key of everything the next run depends on (the preview and staleness use it).
    pub fn choices_key(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let img = self.image.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", self.setup).hash(&mut h);
        self.mask.revision().hash(&mut h);
        img.note.hash(&mut h);
        img.shape.hash(&mut h);
        Some(h.finish())
    }

    /// Builds the recipe of the current choices (inputs written to a fresh run folder).
    pub fn current_recipe(&mut self) -> Result<(Recipe, PathBuf)> {
        match &self.mode {
            Mode::Recipe { text, base } => {
                let r = Recipe::parse(text)
                    .map_err(|e| Error::invalid("recipe", format!("not a valid recipe: {e}")))?;
                Ok((r, base.clone()))
            }
            Mode::Designer => {
                let prior = self
                    .prior()
                    .cloned()
                    .ok_or_else(|| Error::invalid("prior", "no prior is available"))?;
                let img = self
                    .image
                    .clone()
                    .ok_or_else(|| Error::invalid("image", "no image is loaded"))?;
                self.runs += 1;
                let dir = self.session.join(format!("run-{}", self.runs));
                let r = self.setup.recipe(
                    prior.spec.clone(),
                    img.shape,
                    &img.data,
                    &self.mask,
                    &dir,
                )?;
                Ok((r, dir))
            }
        }
    }

    fn begin(&mut self, paused: bool) -> bool {
        let choices = match self.mode {
            Mode::Designer => self.choices_key(),
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
        run.latest = Some(snap);
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

    /// Asks the worker for the preview of the current choices and takes what it finished.
    fn update_preview(&mut self, ctx: &egui::Context) {
        let Some(img) = self.image.clone() else {
            return;
        };
        let truth_key = Arc::as_ptr(&img) as u64;
        if self.truth_key != Some(truth_key) {
            self.truth_key = Some(truth_key);
            self.preview_tex.set_truth(ctx, &img.data, img.shape);
        }
        if self.mode != Mode::Designer {
            return;
        }
        let key = self.choices_key();
        if key.is_some() && key != self.preview_key {
            self.preview_key = key;
            self.previewer.request(preview::Request {
                key: key.unwrap_or_default(),
                setup: self.setup.clone(),
                mask: self.mask.clone(),
                image: img,
            });
            if self.deterministic {
                // Tests draw what a user would see once the preview is in (snapshots).
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(20) {
                    if let Some(done) = self.previewer.take() {
                        let finished = Some(done.0) == key;
                        self.take_preview(ctx, done);
                        if finished {
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                return;
            }
        }
        if let Some(done) = self.previewer.take() {
            self.take_preview(ctx, done);
        }
    }

    fn take_preview(
        &mut self,
        ctx: &egui::Context,
        (key, result): (u64, std::result::Result<Measurement, String>),
    ) {
        if Some(key) != self.preview_key {
            return;
        }
        match result {
            Ok(m) => {
                self.preview_tex.set_y(ctx, &m);
                self.preview = Some(m);
            }
            Err(e) => {
                self.preview = None;
                self.preview_tex.y.clear();
                self.toasts.error(e);
            }
        }
    }

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
            Action::Undo => {
                self.mask.undo();
            }
            Action::Redo => {
                self.mask.redo();
            }
            Action::ClearMask => self.mask.clear(),
            Action::Paint(at) => self.mask.paint(at),
            Action::EndStroke => self.mask.end_stroke(),
            Action::PriorChanged => {
                // A gallery picture made for the old prior gives way to the new prior's own.
                if catalog::gallery_bytes(&self.setup.image).is_some()
                    && let Some(p) = self.prior()
                {
                    self.setup.image = catalog::default_image(p).into();
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
        }
    }

    /// A new picture (or prior): the strokes belonged to the old one, and results of another
    /// picture are forgotten unless a run is still going (then they are marked stale).
    fn image_changed(&mut self) {
        self.mask.clear();
        self.reload_image();
        if !matches!(self.status(), Some(Status::Running | Status::Paused)) {
            self.reset();
        }
    }

    /// Files dropped on the window become the picture.
    fn dropped_files(ctx: &egui::Context) -> Option<Action> {
        let f = ctx.input(|i| i.raw.dropped_files.first().cloned())?;
        let path = f.path().to_path_buf();
        if path.is_file() {
            return Some(Action::Dropped(path));
        }
        f.bytes().ok().map(|b| Action::DroppedBytes(b.into()))
    }

    /// Draws one frame (eframe calls this; tests call it through the harness): panels draw and
    /// return actions, applied once everything is drawn.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.poll();
        let mut actions = toolbar::shortcuts(&ctx);
        actions.extend(Self::dropped_files(&ctx));
        if std::mem::take(&mut self.autorun) {
            actions.push(Action::Run);
        }
        self.update_preview(&ctx);
        if let Some(snap) = self.run.as_ref().and_then(|r| r.latest.as_ref()) {
            self.tex
                .update(&ctx, snap, self.prefs.show_x0, self.prefs.show_std);
        }
        let latest = self.run.as_ref().and_then(|r| r.latest.clone());
        let status = latest.as_ref().map(|s| s.status.clone());

        egui::Panel::top("toolbar").show(ui, |ui| {
            actions.extend(toolbar::toolbar_ui(
                ui,
                status.as_ref(),
                latest.is_some(),
                &mut self.prefs,
                &mut self.window,
                &mut self.show_about,
            ));
        });
        let frame_p95 = (!self.deterministic && self.frame_ms.len() > 10)
            .then(|| percentile(&self.frame_ms, 0.95));
        egui::Panel::bottom("status").show(ui, |ui| {
            status_bar::status_ui(
                ui,
                &status_bar::StatusView {
                    backend: &self.backend,
                    latest: latest.as_ref(),
                    frame_p95_ms: frame_p95,
                    timings: !self.deterministic,
                },
            );
        });
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                ui.heading("Posterior Lab");
                actions.extend(controls::mode_tabs_ui(ui, &self.mode));
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| match &mut self.mode {
                    Mode::Recipe { text, base } => controls::recipe_ui(ui, text, base),
                    Mode::Designer => {
                        let v = designer::DesignerView {
                            priors: &self.priors,
                            image_note: self.image.as_ref().map(|i| i.note.as_str()),
                        };
                        actions.extend(designer::designer_ui(
                            ui,
                            &v,
                            &mut self.setup,
                            &mut self.mask,
                            &mut self.working_side,
                        ));
                    }
                });
            });
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| match &latest {
                Some(s) => plots::plots_ui(ui, s),
                None => {
                    ui.label("Plots of σ, residuals and PSNR appear when a run starts.");
                }
            });
        let stale = self.results_are_stale();
        let painting = self.mode == Mode::Designer && self.setup.op == OpKind::Inpaint;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::both().show(ui, |ui| {
                let v = results::ResultsView {
                    run: &self.tex,
                    preview: &self.preview_tex,
                    has_run: latest.as_ref().is_some_and(|s| !s.shape.contains(&0)),
                    stale,
                    painting,
                    brush_radius: self.mask.radius,
                    show_x0: self.prefs.show_x0,
                    show_std: self.prefs.show_std,
                };
                actions.extend(results::results_ui(
                    ui,
                    &v,
                    &mut self.window,
                    &mut self.compare,
                    &mut self.layout,
                ));
            });
        });
        egui::Window::new("About Posterior Lab")
            .open(&mut self.show_about)
            .collapsible(false)
            .show(&ctx, about::about_ui);
        match self.prompt.ui(&ctx) {
            Some(Choice::Open(p)) => actions.push(Action::OpenImage(p)),
            Some(Choice::Export(p)) => actions.push(Action::ExportTo(p)),
            None => {}
        }
        self.toasts.ui(&ctx);

        for a in actions {
            self.apply(a);
        }
        self.frame_ms.push(t0.elapsed().as_secs_f32() * 1000.0);
        if self.frame_ms.len() > 2000 {
            self.frame_ms.drain(..1000);
        }
    }
}

pub fn percentile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() - 1) as f64 * q).round() as usize]
}

impl eframe::App for PosteriorApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if !self.deterministic {
            let saved = Persisted {
                setup: self.setup.clone(),
                prefs: self.prefs,
                working_side: self.working_side,
            };
            eframe::set_value(storage, eframe::APP_KEY, &saved);
        }
    }

    fn on_exit(&mut self) {
        if self.frame_ms.len() > 10 {
            eprintln!(
                "posterior-lab: {} frames, UI time per frame p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
                self.frame_ms.len(),
                percentile(&self.frame_ms, 0.5),
                percentile(&self.frame_ms, 0.95),
                percentile(&self.frame_ms, 1.0)
            );
        }
    }
}

impl Drop for PosteriorApp {
    fn drop(&mut self) {
        // The run folders hold only copies (truth, mask) of what the user chose; a folder that
        // cannot be removed is left in the temporary directory, nothing else is lost.
        if let Err(e) = std::fs::remove_dir_all(&self.session) {
            eprintln!(
                "posterior-lab: could not remove {}: {e}",
                self.session.display()
            );
        }
    }
}

/// Opens the window (blocks until it is closed).
pub fn run(opts: Options) -> Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 860.0])
            .with_title("Posterior Lab"),
        ..Default::default()
    };
    let mut failure: Option<Error> = None;
    let failure_ref = &mut failure;
    let result = eframe::run_native(
        "Posterior Lab",
        native,
        Box::new(move |cc| match PosteriorApp::new(cc, opts) {
            Ok(app) => Ok(Box::new(app)),
            Err(e) => {
                *failure_ref = Some(e);
                Err("could not start".into())
            }
        }),
    );
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(|e| Error::Backend(format!("the window could not open: {e}")))
}
