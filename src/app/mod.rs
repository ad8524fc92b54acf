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
mod choices;
pub mod controls;
pub mod designer;
pub mod dialogs;
mod directions;
pub mod estimate;
pub mod export;
pub mod lab;
mod latest;
mod loader;
pub mod mask_editor;
pub mod models_window;
mod panels;
pub mod plots;
pub mod preview;
pub mod results;
mod run_control;
pub mod setup;
pub mod status_bar;
pub mod textures;
pub mod toasts;
pub mod toolbar;
pub mod uncertainty;
pub mod views;

use crate::backend::{self, BackendKind};
use crate::engine::{self as engine_wake, Engine, Snapshot};
use crate::error::{Error, Result};
use crate::recipe::Recipe;
pub use actions::Action;
use catalog::{PriorEntry, WorkingImage};
pub use controls::Mode;
use dialogs::{Choice, PathPrompt};
use loader::ImageLoader;
use mask_editor::MaskEditor;
use preview::{Measurement, PreviewWorker};
use setup::{OpKind, Setup};
pub use status_bar::{DeviceOption, percentile};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use textures::{PreviewTextures, RunTextures, UncertaintyTextures};
use toasts::Toasts;
use toolbar::{CentralTab, ViewPrefs};
use uncertainty::{Explorer, UncertaintyPrefs};
use views::ViewWindow;

/// How the window was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub recipe: Option<PathBuf>,
    pub autorun: bool,
    pub backend: Option<BackendKind>,
    /// `--device`: overrides the device chosen in the window.
    pub device: Option<String>,
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
    pub uncertainty: UncertaintyPrefs,
    /// The compute device chosen in the window ("cpu" or an adapter's name); None: automatic.
    pub device: Option<String>,
    pub lab: lab::LabPrefs,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            setup: Setup::default(),
            prefs: ViewPrefs::default(),
            working_side: 256,
            uncertainty: UncertaintyPrefs::default(),
            device: None,
            lab: lab::LabPrefs::default(),
        }
    }
}

/// A run as the window follows it.
pub struct RunView {
    pub id: u64,
    pub recipe: Recipe,
    pub base: PathBuf,
    pub latest: Option<std::sync::Arc<Snapshot>>,
    /// The choices it was started from (None: a recipe run as written).
    choices: Option<u64>,
    /// The preview's share of tiles with a hole when it started (the speed it teaches).
    damage_share: Option<f64>,
}

/// The application state (eframe::App).
pub struct PosteriorApp {
    pub setup: Setup,
    /// This machine's speed as learnt from finished runs (the estimate before Run).
    pub speed: estimate::Speed,
    pub prefs: ViewPrefs,
    pub working_side: usize,
    pub uncertainty: UncertaintyPrefs,
    pub explorer: Explorer,
    pub lab: lab::Lab,
    pub mode: Mode,
    engine: Engine,
    pub backend: String,
    /// The devices offered, and the one the engine runs on (None: chosen automatically).
    pub devices: Vec<DeviceOption>,
    pub device: Option<String>,
    wake: Option<engine_wake::Wake>,
    pub models: models_window::ModelManager,
    session: PathBuf,
    pub priors: Vec<PriorEntry>,
    /// The prior chosen before a colour photo switched it to a photo prior (the designer
    /// offers to go back); cleared by any choice of prior.
    pub prior_switch: Option<String>,
    /// The picture for which the user undid that switch.
    declined_switch: Option<String>,
    pub mask: MaskEditor,
    pub image: Option<Arc<WorkingImage>>,
    pub run: Option<RunView>,
    previewer: PreviewWorker,
    loader: ImageLoader,
    /// Key of the choices the preview was asked for, and the newest preview of them.
    preview_key: Option<u64>,
    pub preview: Option<Measurement>,
    preview_tex: PreviewTextures,
    truth_key: Option<u64>,
    tex: RunTextures,
    utex: UncertaintyTextures,
    pub window: ViewWindow,
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
        let saved = cc
            .storage
            .filter(|_| !opts.deterministic)
            .and_then(|s| eframe::get_value::<Persisted>(s, eframe::APP_KEY));
        // --device / --backend win; else the device chosen in the window last time, if it is
        // still there; else the automatic choice.
        let mut note = None;
        let remembered = saved.as_ref().and_then(|s| s.device.clone());
        let sel = match (&opts.device, opts.backend, &remembered) {
            (None, None, Some(name)) => backend::select_named(name).or_else(|e| {
                note = Some(format!("{e}; using the automatic choice"));
                backend::select(None)
            })?,
            _ => backend::choose(opts.backend, opts.device.as_deref())?,
        };
        let ctx = cc.egui_ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
        let engine = Engine::spawn(sel.device.clone(), Some(wake.clone()));
        let mut app = Self::build(
            engine,
            sel.description.clone(),
            opts.deterministic,
            Some(wake),
        )?;
        app.devices = status_bar::device_options();
        app.device = opts
            .device
            .clone()
            .or_else(|| remembered.filter(|_| note.is_none() && opts.backend.is_none()));
        if let Some(n) = note {
            app.toasts.error(n);
        }
        if let Some(saved) = saved {
            app.setup = saved.setup;
            app.prefs = saved.prefs;
            app.working_side = saved.working_side.clamp(32, catalog::MAX_WORKING_SIDE);
            app.uncertainty = saved.uncertainty;
            app.lab.prefs = saved.lab;
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
        if !deterministic {
            crate::signals::remove_on_signal(session.clone());
        }
        let priors = catalog::priors(&session);
        let saved = Persisted::default();
        let mut app = Self {
            speed: estimate::Speed::default(),
            setup: saved.setup,
            prefs: saved.prefs,
            working_side: saved.working_side,
            uncertainty: saved.uncertainty,
            explorer: Explorer::default(),
            lab: lab::Lab::new(wake.clone(), deterministic),
            mode: Mode::Designer,
            engine,
            backend,
            devices: vec![],
            device: None,
            wake: wake.clone(),
            models: models_window::ModelManager::default(),
            session,
            priors,
            prior_switch: None,
            declined_switch: None,
            mask: MaskEditor::new(),
            image: None,
            run: None,
            loader: ImageLoader::spawn(wake.clone()),
            previewer: PreviewWorker::spawn(wake),
            preview_key: None,
            preview: None,
            preview_tex: PreviewTextures::default(),
            truth_key: None,
            tex: RunTextures::default(),
            utex: UncertaintyTextures::default(),
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

    /// Draws one frame (eframe calls this; tests call it through the harness): panels draw and
    /// return actions, applied once everything is drawn.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.poll();
        self.poll_image();
        let mut actions = toolbar::shortcuts(&ctx);
        actions.extend(Self::dropped_files(&ctx));
        // --autorun waits for the picture it runs on.
        if !self.loader.busy() && std::mem::take(&mut self.autorun) {
            actions.push(Action::Run);
        }
        self.update_preview(&ctx);
        self.explorer.tick(&ctx);
        if self.prefs.tab == CentralTab::Lab {
            self.lab.update(&ctx);
        }
        if let Some(snap) = self.run.as_ref().and_then(|r| r.latest.as_ref()) {
            self.tex.update(&ctx, snap, &self.prefs);
            // Only while the page is shown: a large picture's directions are many textures.
            if let Some(u) = snap
                .uncertainty
                .as_ref()
                .filter(|_| self.prefs.tab == CentralTab::Uncertainty)
            {
                let (width, raw) = (self.uncertainty.show_width, self.prefs.raw_spread);
                self.utex.update(&ctx, snap, u, width, raw);
                let (id, shape) = (snap.run_id, snap.shape);
                let i = self.uncertainty.component;
                self.utex
                    .update_moved(&ctx, id, u, shape, i, self.explorer.t);
            }
        }
        let latest = self.run.as_ref().and_then(|r| r.latest.clone());

        actions.extend(self.bars_ui(ui, latest.as_deref()));
        actions.extend(self.controls_ui(ui));
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| match &latest {
                _ if self.prefs.tab == CentralTab::Lab => lab::timeline::charts_ui(ui, &self.lab),
                Some(s) => plots::plots_ui(ui, s),
                None => {
                    ui.label("Plots of σ, residuals and PSNR appear when a run starts.");
                }
            });
        actions.extend(self.central_ui(ui, latest.as_deref()));
        if let Some(done) = self.models.poll_import() {
            match done {
                Ok(dst) => self.toasts.note(format!("imported into {}", dst.display())),
                Err(e) => self.toasts.error(e.to_string()),
            }
            self.refresh_models();
        }
        actions.extend(models_window::models_ui(&ctx, &mut self.models));
        egui::Window::new("About Posterior Lab")
            .open(&mut self.show_about)
            .collapsible(false)
            .show(&ctx, about::about_ui);
        match self.prompt.ui(&ctx) {
            Some(Choice::Open(p)) => actions.push(Action::OpenImage(p)),
            Some(Choice::Export(p)) => actions.push(Action::ExportTo(p)),
            Some(Choice::SaveResult(p)) => actions.push(Action::SaveResultTo(p)),
            None => {}
        }
        self.toasts.ui(&ctx);

        for a in actions {
            if self.prefs.tab == CentralTab::Lab {
                // The run controls and their keys drive the lab's particles on its page.
                self.apply(lab::shortcut_action(a));
            } else {
                self.apply(a);
            }
        }
        self.frame_ms.push(t0.elapsed().as_secs_f32() * 1000.0);
        if self.frame_ms.len() > 2000 {
            self.frame_ms.drain(..1000);
        }
    }
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
                uncertainty: self.uncertainty,
                device: self.device.clone(),
                lab: self.lab.prefs.clone(),
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

/// Opens the window (blocks until it is closed). SIGINT/SIGTERM close it without leaving its
/// temporary folder behind.
pub fn run(opts: Options) -> Result<()> {
    crate::signals::install();
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
