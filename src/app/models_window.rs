//! The model manager: every model found (installed, your own folder, beside the binary …) with
//! its one-line card summary; import a model folder into your own folder (checked first, copied
//! whole or not at all) and remove one from it. The list is read when the window opens and
//! after each change, never per frame.

use super::actions::Action;
use crate::models::{Found, Source};
use egui::RichText;
use std::path::PathBuf;

/// The window's state (runtime only).
#[derive(Default)]
pub struct ModelManager {
    pub open: bool,
    pub list: Vec<Found>,
    /// The folder to import, as typed.
    pub import_path: String,
    /// A removal waiting for confirmation.
    pub confirm_remove: Option<String>,
}

pub fn models_ui(ctx: &egui::Context, m: &mut ModelManager) -> Vec<Action> {
    let mut out = vec![];
    let mut open = m.open;
    egui::Window::new("Models")
        .open(&mut open)
        .default_width(640.0)
        .show(ctx, |ui| {
            let user = crate::models::user_dir();
            ui.label(match &user {
                Some(u) => format!("Your models folder: {}", u.display()),
                None => "No per-user folder (HOME is not set): import is unavailable.".into(),
            });
            ui.separator();
            egui::Grid::new("models-list")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    for f in &m.list {
                        ui.label(RichText::new(&f.name).strong());
                        ui.vertical(|ui| {
                            ui.label(f.summary());
                            ui.label(
                                RichText::new(format!(
                                    "{} — {}",
                                    f.source.describe(),
                                    f.dir.display()
                                ))
                                .weak()
                                .small(),
                            );
                        });
                        if f.source == Source::User {
                            if m.confirm_remove.as_deref() == Some(f.name.as_str()) {
                                ui.horizontal(|ui| {
                                    if ui.button("Really remove").clicked() {
                                        out.push(Action::RemoveModel(f.name.clone()));
                                    }
                                    if ui.button("Keep").clicked() {
                                        m.confirm_remove = None;
                                    }
                                });
                            } else if ui.button(format!("Remove {}", f.name)).clicked() {
                                m.confirm_remove = Some(f.name.clone());
                            }
                        } else {
                            ui.label("");
                        }
                        ui.end_row();
                    }
                });
            if m.list.is_empty() {
                ui.label("No models found.");
            }
            ui.separator();
            ui.label("Import a model folder (with card.ron and its weights):");
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut m.import_path)
                        .hint_text("/path/to/model-folder")
                        .desired_width(380.0),
                );
                let ready = user.is_some() && !m.import_path.trim().is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new("Import"))
                    .on_hover_text("Checked (card, weights, shapes) and copied into your folder")
                    .clicked()
                {
                    out.push(Action::ImportModel(PathBuf::from(m.import_path.trim())));
                }
            });
        });
    if !open && m.open {
        m.confirm_remove = None;
    }
    m.open = open;
    out
}
