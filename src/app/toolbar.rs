//! The top bar: run control with keyboard shortcuts, what the views show, export, about.

use super::actions::Action;
use super::views::ViewWindow;
use crate::engine::Status;
use egui::{Key, KeyboardShortcut, Modifiers};

pub const RUN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::Space);
pub const PAUSE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::P);
pub const STEP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::S);
pub const STOP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::Escape);
pub const EXPORT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
pub const SAVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
pub const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
pub const REDO: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);

/// What the view options toggle (persisted with the choices).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ViewPrefs {
    /// Chains as denoised estimates x̂0 (else the noisy states x_t).
    pub show_x0: bool,
    /// Spread as standard deviation (else variance).
    pub show_std: bool,
    /// What the central panel shows.
    pub tab: CentralTab,
    /// The chains' own spread even where the prior has a measured calibration.
    #[serde(default)]
    pub raw_spread: bool,
    /// One restoration view shown large (None: all side by side).
    #[serde(default)]
    pub focus: Option<super::results::Focus>,
}

/// The central panel's pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CentralTab {
    /// Truth, y, mean, spread, before/after and the chains.
    #[default]
    Restoration,
    /// Principal directions, intervals and calibration.
    Uncertainty,
    /// Guided diffusion in the plane.
    Lab,
}

impl Default for ViewPrefs {
    fn default() -> Self {
        Self {
            show_x0: true,
            show_std: true,
            tab: CentralTab::Restoration,
            raw_spread: false,
            focus: None,
        }
    }
}

/// The keys the window answers to, consumed before any widget sees them; none while a text
/// field has the keyboard.
pub fn shortcuts(ctx: &egui::Context) -> Vec<Action> {
    if ctx.egui_wants_keyboard_input() {
        return vec![];
    }
    ctx.input_mut(|i| {
        // Redo first: Ctrl+Shift+Z also matches Ctrl+Z when shift is ignored.
        let table = [
            (REDO, Action::Redo),
            (UNDO, Action::Undo),
            // Before Step (S): Ctrl+S saves.
            (SAVE, Action::AskSaveResult),
            (RUN, Action::Run),
            (PAUSE, Action::TogglePause),
            (STEP, Action::Step),
            (STOP, Action::Stop),
            (EXPORT, Action::AskExport),
        ];
        table
            .into_iter()
            .filter(|(k, _)| i.consume_shortcut(k))
            .map(|(_, a)| a)
            .take(1)
            .collect()
    })
}

/// Draws the bar; `status` is the current run's, `has_frame` whether it has shown anything.
pub fn toolbar_ui(
    ui: &mut egui::Ui,
    status: Option<&Status>,
    has_frame: bool,
    prefs: &mut ViewPrefs,
    window: &mut ViewWindow,
    show_about: &mut bool,
    show_models: &mut bool,
) -> Vec<Action> {
    let mut out = vec![];
    let running = matches!(status, Some(Status::Running));
    let paused = matches!(status, Some(Status::Paused));
    let ctx = ui.ctx().clone();
    let key = |s: &KeyboardShortcut| ctx.format_shortcut(s);
    ui.horizontal_wrapped(|ui| {
        if ui
            .add(egui::Button::new("Run").shortcut_text(key(&RUN)))
            .on_hover_text("Start a new run of the current choices")
            .clicked()
        {
            out.push(Action::Run);
        }
        // One fixed-size slot for Pause/Resume, so the buttons never move under the pointer.
        let label = if paused { "Resume" } else { "Pause" };
        if ui
            .add_enabled(
                running || paused,
                egui::Button::new(label)
                    .shortcut_text(key(&PAUSE))
                    .min_size(egui::vec2(84.0, 0.0)),
            )
            .clicked()
        {
            out.push(Action::TogglePause);
        }
        if ui
            .add(egui::Button::new("Step").shortcut_text(key(&STEP)))
            .on_hover_text("One step, then pause")
            .clicked()
        {
            out.push(Action::Step);
        }
        if ui
            .add_enabled(
                running || paused,
                egui::Button::new("Stop").shortcut_text(key(&STOP)),
            )
            .clicked()
        {
            out.push(Action::Stop);
        }
        if ui.button("Reset").on_hover_text("Forget the run").clicked() {
            out.push(Action::Reset);
        }
        ui.separator();
        ui.checkbox(&mut prefs.show_x0, "x0-hat")
            .on_hover_text("Chains as denoised estimates x0-hat (on) or noisy states x_t (off)");
        ui.checkbox(&mut prefs.show_std, "std")
            .on_hover_text("Spread as standard deviation (on) or variance (off)");
        ui.checkbox(&mut prefs.raw_spread, "raw spread")
            .on_hover_text(
                "The chains' own spread; off: calibrated on held-out photos where the prior's card \
             has a factor for the run (the chains agree more than their error says)",
            );
        ui.spacing_mut().slider_width = 70.0;
        ui.add(egui::Slider::new(&mut window.zoom, 1.0..=16.0).text("zoom"));
        ui.separator();
        if ui
            .add_enabled(
                has_frame,
                egui::Button::new("Export…").shortcut_text(key(&EXPORT)),
            )
            .on_hover_text("PNGs, .npy arrays and the recipe (the command line reproduces the run)")
            .clicked()
        {
            out.push(Action::AskExport);
        }
        if ui
            .add_enabled(
                has_frame,
                egui::Button::new("Save result…").shortcut_text(key(&SAVE)),
            )
            .on_hover_text("The posterior mean as a PNG at the size it was restored at")
            .clicked()
        {
            out.push(Action::AskSaveResult);
        }
        ui.separator();
        ui.toggle_value(show_models, "Models…")
            .on_hover_text("The models found, import one into your own folder, remove one");
        ui.separator();
        ui.toggle_value(show_about, "About")
            .on_hover_text("Version and credits of the bundled images and data");
    });
    out
}
