//! The window: load a picture, degrade it, pick a prior and a sampler, and watch the chains, their
//! mean and their spread evolve. The engine thread does all the numerics; this thread only sends
//! commands and draws the newest snapshot (it never waits on the engine).

pub mod about;
pub mod catalog;
pub mod export;
pub mod mask_editor;
pub mod plots;
pub mod setup;
pub mod views;

use crate::backend::{self, BackendKind};
use crate::engine::{Command, Engine, Snapshot, Status};
use crate::error::{Error, Result};
use crate::recipe::Recipe;
use catalog::{PriorEntry, WorkingImage};
use egui::{Color32, RichText, Sense};
use mask_editor::MaskEditor;
use plots::History;
use setup::{OpKind, SAMPLER_PRESETS, Setup};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use views::{Tex, ViewWindow};

/// How the window was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub recipe: Option<PathBuf>,
    pub autorun: bool,
    pub backend: Option<BackendKind>,
    /// Tests: no timing figures on screen, no settings read or written.
    pub deterministic: bool,
}

/// Where the next run comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The panel's choices (image, degradation, prior, sampler).
    Designer,
    /// A recipe file loaded as is (`gui --recipe`): its text is editable.
    Recipe { text: String, base: PathBuf },
}

/// A run as the window follows it.
pub struct RunView {
    pub id: u64,
    pub recipe: Recipe,
    pub base: PathBuf,
    pub latest: Option<Snapshot>,
    pub history: History,
}

#[derive(Default)]
struct Textures {
    truth: Tex,
    y: Tex,
    mean: Tex,
    spread: Tex,
    chains: Vec<Tex>,
    spread_top: f32,
    /// Which frame the textures show (run id, step, x0-hat/x_t, std/var).
    key: Option<(u64, usize, bool, bool, usize)>,
}

struct Toast {
    text: String,
    error: bool,
    until: Instant,
}

/// The application state (eframe::App).
pub struct PosteriorApp {
    pub setup: Setup,
    pub mode: Mode,
    engine: Engine,
    pub backend: String,
    session: PathBuf,
    pub priors: Vec<PriorEntry>,
    pub mask: MaskEditor,
    pub image: Option<WorkingImage>,
    pub run: Option<RunView>,
    preview_key: Option<String>,
    preview: Option<(Vec<f32>, Vec<bool>, [usize; 3])>,
    preview_tex: Tex,
    truth_tex: Tex,
    tex: Textures,
    window: ViewWindow,
    pub show_x0: bool,
    pub show_std: bool,
    compare: f32,
    toasts: Vec<Toast>,
    pub frame_ms: Vec<f32>,
    deterministic: bool,
    autorun: bool,
    runs: u64,
    pub working_side: usize,
    pub last_export: Option<PathBuf>,
    pub show_about: bool,
}

impl PosteriorApp {
    /// Builds the app: picks the backend, starts the engine, loads the recipe or the default.
    pub fn new(cc: &eframe::CreationContext<'_>, opts: Options) -> Result<Self> {
        let sel = backend::select(opts.backend)?;
        let ctx = cc.egui_ctx.clone();
        let engine = Engine::spawn(
            sel.device.clone(),
            Some(Box::new(move || ctx.request_repaint())),
        );
        let mut app = Self::with_engine(engine, sel.description.clone(), opts.deterministic)?;
        if !opts.deterministic
            && let Some(storage) = cc.storage
            && let Some(setup) = eframe::get_value::<Setup>(storage, eframe::APP_KEY)
        {
            app.setup = setup;
        }
        if let Some(path) = &opts.recipe {
            app.load_recipe_file(path)?;
        }
        app.reload_image();
        app.autorun = opts.autorun;
        Ok(app)
    }

    /// The app around an existing engine (tests build it this way).
    pub fn with_engine(engine: Engine, backend: String, deterministic: bool) -> Result<Self> {
        // One folder per window (tests run several in one process).
        static INSTANCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let session =
            std::env::temp_dir().join(format!("posterior-lab-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&session)
            .map_err(|e| Error::file(&session, format!("cannot create: {e}")))?;
        let priors = catalog::priors(&session);
        let mut app = Self {
            setup: Setup::default(),
            mode: Mode::Designer,
            engine,
            backend,
            session,
            priors,
            mask: MaskEditor::new(),
            image: None,
            run: None,
            preview_key: None,
            preview: None,
            preview_tex: Tex::default(),
            truth_tex: Tex::default(),
            tex: Textures::default(),
            window: ViewWindow::default(),
            show_x0: true,
            show_std: true,
            compare: 0.5,
            toasts: vec![],
            frame_ms: vec![],
            deterministic,
            autorun: false,
            runs: 0,
            working_side: 128,
            last_export: None,
            show_about: false,
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
        let bytes: Option<Vec<u8>> = match catalog::gallery_bytes(&name) {
            Some(b) => Some(b.to_vec()),
            None => std::fs::read(&name).ok(),
        };
        let Some(bytes) = bytes else {
            self.toast(format!("{name}: cannot read image"), true);
            self.setup.image = Setup::default().image;
            if catalog::gallery_bytes(&self.setup.image).is_some() {
                self.reload_image();
            }
            return;
        };
        match catalog::working_image(
            &bytes,
            &name,
            prior.shape,
            prior.any_size,
            self.working_side,
        ) {
            Ok(img) => self.image = Some(img),
            Err(e) => self.toast(e.to_string(), true),
        }
        self.preview_key = None;
    }

    fn toast(&mut self, text: String, error: bool) {
        self.toasts.push(Toast {
            text,
            error,
            until: Instant::now() + Duration::from_secs(if error { 8 } else { 4 }),
        });
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

    /// Run: starts a new run of the current choices (cancelling any other).
    pub fn start(&mut self) {
        match self.current_recipe() {
            Ok((recipe, base)) => {
                let id = self.engine.start(recipe.clone(), base.clone(), false);
                self.run = Some(RunView {
                    id,
                    recipe,
                    base,
                    latest: None,
                    history: History::default(),
                });
                self.tex.key = None;
            }
            Err(e) => self.toast(e.to_string(), true),
        }
    }

    pub fn pause(&mut self) {
        self.engine.send(Command::Pause);
    }
    pub fn resume(&mut self) {
        self.engine.send(Command::Resume);
    }
    pub fn step_once(&mut self) {
        if self.run.is_none() {
            // Step on a fresh run: start it paused, then step.
            if let Ok((recipe, base)) = self.current_recipe() {
                let id = self.engine.start(recipe.clone(), base.clone(), true);
                self.run = Some(RunView {
                    id,
                    recipe,
                    base,
                    latest: None,
                    history: History::default(),
                });
            }
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
        self.tex = Textures::default();
    }

    pub fn status(&self) -> Option<&Status> {
        self.run.as_ref()?.latest.as_ref().map(|s| &s.status)
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
            let text = format!("run failed: {msg}");
            run.latest = Some(snap);
            self.toast(text, true);
            return;
        }
        run.history.push(&snap);
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

    fn update_preview(&mut self, ctx: &egui::Context) {
        let Mode::Designer = self.mode else { return };
        let Some(img) = &self.image else { return };
        // Cheap per frame: the choices, the mask's revision, the image.
        let key = format!(
            "{:?}|{:?}|{}|{}",
            self.setup,
            self.mask.revision(),
            img.note,
            img.data.len()
        );
        if self.preview_key.as_deref() == Some(&key) {
            return;
        }
        self.preview_key = Some(key);
        self.truth_tex
            .set(ctx, "truth", views::to_color_image(&img.data, img.shape));
        match preview_measurement(&self.setup, &self.mask, img, &self.session.join("preview")) {
            Ok((y, seen)) => {
                self.preview_tex.set(
                    ctx,
                    "y-preview",
                    views::measurement_image(&y, &seen, img.shape),
                );
                self.preview = Some((y, seen, img.shape));
            }
            Err(e) => {
                self.preview = None;
                self.preview_tex.clear();
                self.toast(e.to_string(), true);
            }
        }
    }

    fn update_textures(&mut self, ctx: &egui::Context) {
        let Some(run) = &self.run else { return };
        let Some(snap) = &run.latest else { return };
        if snap.shape.contains(&0) {
            return;
        }
        let key = (
            snap.run_id,
            snap.step,
            self.show_x0,
            self.show_std,
            snap.nfe,
        );
        if self.tex.key == Some(key) {
            return;
        }
        self.tex.key = Some(key);
        let shape = snap.shape;
        let d: usize = shape.iter().product();
        if let Some(inputs) = &snap.inputs {
            if let Some(t) = &inputs.truth {
                self.tex
                    .truth
                    .set(ctx, "run-truth", views::to_color_image(t, shape));
            } else {
                self.tex.truth.clear();
            }
            self.tex.y.set(
                ctx,
                "run-y",
                views::measurement_image(&inputs.y_view, &inputs.seen, shape),
            );
        }
        self.tex
            .mean
            .set(ctx, "mean", views::to_color_image(&snap.mean, shape));
        let (img, top) = views::spread_image(&snap.variance, shape, self.show_std);
        self.tex.spread.set(ctx, "spread", img);
        self.tex.spread_top = top;
        let src = if self.show_x0 { &snap.x0_hat } else { &snap.x };
        let n = src.len() / d.max(1);
        self.tex.chains.resize_with(n, Tex::default);
        for k in 0..n {
            self.tex.chains[k].set(
                ctx,
                &format!("chain-{k}"),
                views::to_color_image(&src[k * d..(k + 1) * d], shape),
            );
        }
    }

    // ---- panels ------------------------------------------------------------------------------

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Posterior Lab");
        ui.horizontal(|ui| {
            if ui
                .selectable_label(self.mode == Mode::Designer, "Designer")
                .on_hover_text("Build the problem from a picture, a degradation and a sampler")
                .clicked()
            {
                self.mode = Mode::Designer;
                self.preview_key = None;
            }
            let is_recipe = matches!(self.mode, Mode::Recipe { .. });
            if ui
                .selectable_label(is_recipe, "Recipe")
                .on_hover_text("Edit and run a recipe (RON) as the command line reads it")
                .clicked()
                && !is_recipe
            {
                let text = match self.current_recipe() {
                    Ok((r, _)) => r.to_ron(),
                    Err(_) => String::new(),
                };
                let base = self.session.join(format!("run-{}", self.runs));
                self.mode = Mode::Recipe { text, base };
            }
        });
        ui.separator();
        egui::ScrollArea::vertical().show(ui, |ui| match &mut self.mode {
            Mode::Recipe { text, base } => {
                ui.label(format!("Paths are relative to {}", base.display()));
                ui.add(
                    egui::TextEdit::multiline(text)
                        .code_editor()
                        .desired_rows(18)
                        .desired_width(f32::INFINITY),
                );
                if let Err(e) = Recipe::parse(text) {
                    ui.colored_label(Color32::LIGHT_RED, format!("not a valid recipe: {e}"));
                }
            }
            Mode::Designer => self.designer_ui(ui),
        });
    }

    fn designer_ui(&mut self, ui: &mut egui::Ui) {
        let before = self.setup.clone();
        // Prior.
        ui.label(RichText::new("Prior").strong());
        let current = self.prior().map(|p| p.label.clone()).unwrap_or_default();
        egui::ComboBox::new("prior", "prior")
            .selected_text(current)
            .width(170.0)
            .truncate()
            .show_ui(ui, |ui| {
                for p in &self.priors {
                    ui.selectable_value(&mut self.setup.prior, p.name.clone(), &p.label);
                }
            });
        if self.setup.prior != before.prior {
            self.mask.clear();
            // A gallery picture made for the old prior gives way to the new prior's own.
            if catalog::gallery_bytes(&self.setup.image).is_some()
                && let Some(p) = self.prior()
            {
                self.setup.image = catalog::default_image(p).into();
            }
            self.reload_image();
        }

        // Image.
        ui.add_space(6.0);
        ui.label(RichText::new("Image").strong());
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("gallery", "image")
                .selected_text(if catalog::gallery_bytes(&self.setup.image).is_some() {
                    self.setup.image.clone()
                } else {
                    "(file)".into()
                })
                .show_ui(ui, |ui| {
                    for (name, _) in catalog::GALLERY {
                        ui.selectable_value(&mut self.setup.image, name.to_string(), name);
                    }
                });
            if ui
                .button("Open…")
                .on_hover_text("Open a PNG/JPEG (or drop one on the window)")
                .clicked()
                && let Some(p) = rfd::FileDialog::new()
                    .add_filter("images", &["png", "jpg", "jpeg"])
                    .pick_file()
            {
                self.setup.image = p.display().to_string();
            }
        });
        if let Some(img) = &self.image {
            ui.label(RichText::new(&img.note).small().weak());
        }
        ui.checkbox(&mut self.setup.image_is_y, "this picture is the degraded y")
            .on_hover_text(
                "Use a real degraded photo as the observation: y = A(picture) with no noise \
                 added and no truth (the degradation below says what happened to it)",
            );
        if self.prior().is_some_and(|p| p.any_size) {
            let mut side = self.working_side;
            ui.add(
                egui::Slider::new(&mut side, 32..=512)
                    .text("working size (px)")
                    .step_by(4.0),
            );
            if side != self.working_side {
                self.working_side = side;
                self.reload_image();
            }
        }
        if self.setup.image != before.image {
            self.mask.clear();
            self.reload_image();
        }

        // Degradation.
        ui.add_space(6.0);
        ui.label(RichText::new("Degradation").strong());
        egui::ComboBox::new("operator", "degradation")
            .selected_text(self.setup.op.label())
            .show_ui(ui, |ui| {
                for k in OpKind::ALL {
                    ui.selectable_value(&mut self.setup.op, k, k.label());
                }
            });
        match self.setup.op {
            OpKind::Inpaint => {
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.setup.use_box, "box");
                    ui.add_enabled(
                        self.setup.use_box,
                        egui::Slider::new(&mut self.setup.box_fraction, 0.1..=0.9).text("side"),
                    );
                });
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.setup.use_random, "random");
                    ui.add_enabled(
                        self.setup.use_random,
                        egui::Slider::new(&mut self.setup.keep_fraction, 0.05..=0.95).text("kept"),
                    );
                });
                ui.label(RichText::new("Brush: paint on the y view to remove pixels").small());
                ui.horizontal(|ui| {
                    ui.add(egui::Slider::new(&mut self.mask.radius, 0.5..=12.0).text("size"));
                    ui.checkbox(&mut self.mask.eraser, "eraser");
                });
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(self.mask.can_undo(), egui::Button::new("Undo"))
                        .on_hover_text("Ctrl+Z")
                        .clicked()
                    {
                        self.mask.undo();
                    }
                    if ui
                        .add_enabled(self.mask.can_redo(), egui::Button::new("Redo"))
                        .on_hover_text("Ctrl+Shift+Z")
                        .clicked()
                    {
                        self.mask.redo();
                    }
                    if ui.button("Clear").clicked() {
                        self.mask.clear();
                    }
                    ui.checkbox(&mut self.mask.inverted, "invert");
                });
            }
            OpKind::Downsample => {
                ui.add(egui::Slider::new(&mut self.setup.factor, 2..=8).text("factor"));
            }
            OpKind::Blur => {
                ui.add(
                    egui::Slider::new(&mut self.setup.blur_sigma, 0.3..=5.0).text("blur σ (px)"),
                );
            }
            OpKind::Denoise | OpKind::Grayscale => {}
        }
        ui.add(
            egui::Slider::new(&mut self.setup.noise_sigma, 0.001..=1.0)
                .logarithmic(true)
                .text("noise σ_y"),
        )
        .on_hover_text(
            "Standard deviation of the measurement noise, in data units ([-1, 1] images)",
        );

        // Sampler.
        ui.add_space(6.0);
        ui.label(RichText::new("Sampler").strong());
        let current = setup::parse_sampler(&self.setup.sampler)
            .map(|s| s.name().to_string())
            .unwrap_or_else(|_| "(edited)".into());
        egui::ComboBox::new("sampler", "sampler")
            .selected_text(current.clone())
            .show_ui(ui, |ui| {
                for (name, text, help) in SAMPLER_PRESETS {
                    if ui
                        .selectable_label(current == name, name)
                        .on_hover_text(help)
                        .clicked()
                    {
                        self.setup.sampler = text.to_string();
                    }
                }
            });
        if let Some((_, _, help)) = SAMPLER_PRESETS.iter().find(|(n, _, _)| *n == current) {
            ui.label(RichText::new(*help).small().weak());
        }
        ui.add(
            egui::TextEdit::singleline(&mut self.setup.sampler)
                .code_editor()
                .desired_width(f32::INFINITY),
        )
        .on_hover_text("The recipe's sampler line; every field but steps has a default");
        if let Err(e) = setup::parse_sampler(&self.setup.sampler) {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        ui.horizontal(|ui| {
            ui.add(
                egui::DragValue::new(&mut self.setup.chains)
                    .range(1..=256)
                    .prefix("chains "),
            );
            ui.add(egui::DragValue::new(&mut self.setup.seed).prefix("seed "));
        });
        if self.setup.op != before.op || self.setup.factor != before.factor {
            self.preview_key = None;
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        let status = self.status().cloned();
        let running = matches!(status, Some(Status::Running));
        let paused = matches!(status, Some(Status::Paused));
        ui.horizontal(|ui| {
            if ui
                .button("Run")
                .on_hover_text("Start a new run (Space)")
                .clicked()
            {
                self.start();
            }
            // One fixed-size slot for Pause/Resume, so the buttons never move under the pointer.
            let label = if paused { "Resume" } else { "Pause" };
            if ui
                .add_enabled(
                    running || paused,
                    egui::Button::new(label).min_size(egui::vec2(64.0, 0.0)),
                )
                .clicked()
            {
                if paused {
                    self.resume();
                } else {
                    self.pause();
                }
            }
            if ui
                .button("Step")
                .on_hover_text("One step, then pause")
                .clicked()
            {
                self.step_once();
            }
            if ui
                .add_enabled(running || paused, egui::Button::new("Stop"))
                .clicked()
            {
                self.stop();
            }
            if ui.button("Reset").clicked() {
                self.reset();
            }
            ui.separator();
            ui.checkbox(&mut self.show_x0, "show x0-hat").on_hover_text(
                "Chains as denoised estimates x0-hat (on) or noisy states x_t (off)",
            );
            ui.checkbox(&mut self.show_std, "std (not variance)");
            ui.add(egui::Slider::new(&mut self.window.zoom, 1.0..=16.0).text("zoom"));
            ui.separator();
            if ui
                .add_enabled(self.run.is_some(), egui::Button::new("Export…"))
                .on_hover_text("PNGs, .npy arrays and the recipe (the CLI reproduces the run)")
                .clicked()
            {
                let dir = rfd::FileDialog::new().pick_folder().unwrap_or_else(|| {
                    PathBuf::from("out").join(format!("gui-export-{}", self.runs))
                });
                match self.export_to(&dir) {
                    Ok(files) => self.toast(
                        format!("exported {} files to {}", files.len(), dir.display()),
                        false,
                    ),
                    Err(e) => self.toast(e.to_string(), true),
                }
            }
            ui.separator();
            ui.toggle_value(&mut self.show_about, "About")
                .on_hover_text("Version and credits of the bundled images and data");
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(format!("backend: {}", self.backend));
            ui.separator();
            match self.run.as_ref().and_then(|r| r.latest.as_ref()) {
                Some(s) => {
                    let st = match &s.status {
                        Status::Running => "running".to_string(),
                        Status::Paused => "paused".into(),
                        Status::Done => "done".into(),
                        Status::Stopped => "stopped".into(),
                        Status::Failed(m) => format!("failed: {m}"),
                    };
                    ui.label(st);
                    ui.separator();
                    ui.label(format!(
                        "step {}/{}  NFE {}  σ {:.3}  {} chains",
                        s.step, s.total_steps, s.nfe, s.sigma, s.chains
                    ));
                    if let Some(p) = s.psnr {
                        ui.label(format!("PSNR(mean) {p:.2} dB"));
                    }
                    if !self.deterministic {
                        ui.label(format!("{:.1} steps/s", s.steps_per_second));
                    }
                }
                None => {
                    ui.label("ready: press Run");
                }
            }
            if !self.deterministic && self.frame_ms.len() > 10 {
                ui.separator();
                ui.label(format!(
                    "frame p95 {:.1} ms",
                    percentile(&self.frame_ms, 0.95)
                ));
            }
        });
    }

    fn views_ui(&mut self, ui: &mut egui::Ui) {
        let side = ((ui.available_width() - 60.0) / 4.0).clamp(96.0, 280.0);
        let has_run = self.run.as_ref().is_some_and(|r| r.latest.is_some());
        let painting = matches!(self.mode, Mode::Designer) && self.setup.op == OpKind::Inpaint;
        let mut new_window = self.window;
        ui.horizontal(|ui| {
            let truth = if has_run && self.tex.truth.get().is_some() {
                &self.tex.truth
            } else {
                &self.truth_tex
            };
            let r = views::image_view(
                ui,
                "Truth",
                truth,
                &self.window,
                side,
                Sense::click_and_drag(),
            );
            new_window.interact(&r, true);
            let y_tex = if has_run && !painting {
                &self.tex.y
            } else {
                &self.preview_tex
            };
            let title = if painting {
                "y (paint here)"
            } else {
                "Measurement y"
            };
            let r = views::image_view(
                ui,
                title,
                y_tex,
                &self.window,
                side,
                Sense::click_and_drag(),
            );
            new_window.interact(&r, !painting);
            if painting {
                self.brush(&r);
            }
            let r = views::image_view(
                ui,
                "Posterior mean",
                &self.tex.mean,
                &self.window,
                side,
                Sense::click_and_drag(),
            );
            new_window.interact(&r, true);
            let label = if self.show_std {
                "Std per pixel"
            } else {
                "Variance per pixel"
            };
            let r = views::image_view(
                ui,
                label,
                &self.tex.spread,
                &self.window,
                side,
                Sense::click_and_drag(),
            );
            new_window.interact(&r, true);
            if self.tex.spread.get().is_some() {
                views::colorbar(
                    ui,
                    self.tex.spread_top,
                    side - 30.0,
                    if self.show_std { "std" } else { "var" },
                );
            }
        });
        self.window = new_window;

        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label(RichText::new("Before / after").strong());
                let (rect, resp) =
                    ui.allocate_exact_size(egui::vec2(side, side), Sense::click_and_drag());
                let before = if has_run {
                    &self.tex.y
                } else {
                    &self.preview_tex
                };
                if let (Some(b), Some(a)) = (before.get(), self.tex.mean.get()) {
                    let uv = self.window.uv();
                    let split = rect.min.x + rect.width() * self.compare;
                    let left = egui::Rect::from_min_max(rect.min, egui::pos2(split, rect.max.y));
                    let right = egui::Rect::from_min_max(egui::pos2(split, rect.min.y), rect.max);
                    let uv_split = uv.min.x + uv.width() * self.compare;
                    let p = ui.painter_at(rect);
                    p.image(
                        b.id(),
                        left,
                        egui::Rect::from_min_max(uv.min, egui::pos2(uv_split, uv.max.y)),
                        Color32::WHITE,
                    );
                    p.image(
                        a.id(),
                        right,
                        egui::Rect::from_min_max(egui::pos2(uv_split, uv.min.y), uv.max),
                        Color32::WHITE,
                    );
                    p.line_segment(
                        [egui::pos2(split, rect.min.y), egui::pos2(split, rect.max.y)],
                        egui::Stroke::new(2.0, Color32::YELLOW),
                    );
                } else {
                    ui.painter_at(rect)
                        .rect_filled(rect, 2.0, Color32::from_gray(30));
                }
                if resp.dragged()
                    && let Some(p) = resp.interact_pointer_pos()
                {
                    self.compare = ((p.x - rect.min.x) / rect.width()).clamp(0.0, 1.0);
                }
                ui.add(
                    egui::Slider::new(&mut self.compare, 0.0..=1.0)
                        .show_value(false)
                        .text("split"),
                );
            });
            ui.vertical(|ui| {
                let what = if self.show_x0 {
                    "Chains (x0-hat)"
                } else {
                    "Chains (x_t)"
                };
                ui.label(RichText::new(what).strong());
                let n = self.tex.chains.len();
                if n == 0 {
                    ui.label("—");
                }
                let cols = (n as f32).sqrt().ceil().max(1.0) as usize;
                let cell = ((side * 1.3) / cols as f32).max(24.0);
                egui::Grid::new("chains")
                    .spacing([2.0, 2.0])
                    .show(ui, |ui| {
                        for k in 0..n {
                            let (rect, _) =
                                ui.allocate_exact_size(egui::vec2(cell, cell), Sense::hover());
                            if let Some(t) = self.tex.chains[k].get() {
                                ui.painter_at(rect).image(
                                    t.id(),
                                    rect,
                                    self.window.uv(),
                                    Color32::WHITE,
                                );
                            }
                            if (k + 1) % cols == 0 {
                                ui.end_row();
                            }
                        }
                    });
            });
        });
    }

    fn brush(&mut self, resp: &egui::Response) {
        let Some(img) = &self.image else { return };
        let [_, h, w] = img.shape;
        if resp.dragged_by(egui::PointerButton::Primary) || resp.clicked() {
            if let Some(p) = resp.interact_pointer_pos() {
                let at = self.window.to_image(resp.rect, p, w, h);
                self.mask.paint(at);
            }
            if resp.clicked() {
                self.mask.end_stroke();
            }
        }
        if resp.drag_stopped() {
            self.mask.end_stroke();
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let (undo, redo, space) = ctx.input_mut(|i| {
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            );
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            (undo, redo, false)
        });
        let _ = space;
        if redo {
            self.mask.redo();
        } else if undo {
            self.mask.undo();
        }
        // Files dropped on the window become the image.
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(f) = dropped.first() {
            let path = f.path().to_path_buf();
            if path.is_file() {
                self.setup.image = path.display().to_string();
            } else if let Ok(bytes) = f.bytes() {
                let p = self.session.join("dropped-image");
                if std::fs::write(&p, bytes).is_ok() {
                    self.setup.image = p.display().to_string();
                }
            }
            self.mode = Mode::Designer;
            self.mask.clear();
            self.reload_image();
        }
    }

    fn toasts_ui(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.toasts.retain(|t| t.until > now);
        if self.toasts.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("posterior-lab-toasts"))
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-12.0, 40.0))
            .show(ctx, |ui| {
                for t in &self.toasts {
                    let fill = if t.error {
                        Color32::from_rgb(110, 30, 30)
                    } else {
                        Color32::from_rgb(30, 70, 40)
                    };
                    egui::Frame::popup(ui.style()).fill(fill).show(ui, |ui| {
                        ui.set_max_width(420.0);
                        ui.label(RichText::new(&t.text).color(Color32::WHITE));
                    });
                }
            });
        ctx.request_repaint_after(Duration::from_millis(250));
    }

    /// Draws one frame (eframe calls this; tests call it through the harness).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.poll();
        self.shortcuts(&ctx);
        if self.autorun {
            self.autorun = false;
            self.start();
        }
        self.update_preview(&ctx);
        self.update_textures(&ctx);

        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| self.controls_ui(ui));
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| match &self.run {
                Some(r) => r.history.ui(ui),
                None => {
                    ui.label("Plots of σ, residuals and PSNR appear when a run starts.");
                }
            });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::both().show(ui, |ui| self.views_ui(ui));
        });
        egui::Window::new("About Posterior Lab")
            .open(&mut self.show_about)
            .collapsible(false)
            .show(&ctx, about::about_ui);
        self.toasts_ui(&ctx);
        self.frame_ms.push(t0.elapsed().as_secs_f32() * 1000.0);
        if self.frame_ms.len() > 2000 {
            self.frame_ms.drain(..1000);
        }
    }
}

/// y = A(truth) + σ_y n for the panel's preview, computed on the CPU (small images only).
fn preview_measurement(
    setup: &Setup,
    mask: &MaskEditor,
    img: &WorkingImage,
    dir: &Path,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let device = burn::tensor::Device::flex();
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    let spec = setup.operator(img.shape, mask, dir)?;
    let op = crate::operators::build(&spec, img.shape, dir, &device)?;
    let [c, h, w] = img.shape;
    let x = crate::tensor::from_vec(img.data.clone(), [1, c, h, w], &device);
    let y = op.forward(x);
    let mut rng = crate::tensor::rng(setup.seed);
    let noise = crate::tensor::normal(&mut rng, y.dims(), &device).mul_scalar(setup.noise_sigma);
    let y = if setup.image_is_y { y } else { y + noise };
    crate::operators::display_measurement(op.as_ref(), y)
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
            eframe::set_value(storage, eframe::APP_KEY, &self.setup);
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
        // The run folders hold only copies (truth, mask) of what the user chose.
        let _ = std::fs::remove_dir_all(&self.session);
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
