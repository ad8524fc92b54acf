//! The left panel: the designer, or a recipe edited as the command line reads it.

use super::actions::Action;
use crate::recipe::Recipe;
use egui::Color32;
use std::path::PathBuf;

/// Where the next run comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The panel's choices (image, degradation, prior, sampler).
    Designer,
    /// A recipe loaded or written as is: its text is editable.
    Recipe { text: String, base: PathBuf },
}

/// The two tabs; returns the switch the user asked for.
pub fn mode_tabs_ui(ui: &mut egui::Ui, mode: &Mode) -> Option<Action> {
    let mut out = None;
    ui.horizontal(|ui| {
        let designer = *mode == Mode::Designer;
        if ui
            .selectable_label(designer, "Designer")
            .on_hover_text("Build the problem from a picture, a degradation and a sampler")
            .clicked()
            && !designer
        {
            out = Some(Action::Designer);
        }
        if ui
            .selectable_label(!designer, "Recipe")
            .on_hover_text("Edit and run a recipe (RON) as the command line reads it")
            .clicked()
            && designer
        {
            out = Some(Action::RecipeMode);
        }
    });
    out
}

/// The recipe editor, with the parse error under it.
pub fn recipe_ui(ui: &mut egui::Ui, text: &mut String, base: &std::path::Path) {
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
