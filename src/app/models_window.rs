//! The model manager: every model found (installed, your own folder, beside the binary …) with
//! its one-line card summary; import a model folder into your own folder (checked first, copied
//! whole or not at all), convert a pretrained checkpoint into one (on a worker thread: a 2 GB
//! file takes seconds), and remove one from it. The list is read when the window opens and
//! after each change, never per frame.

use super::actions::Action;
use crate::models::{Found, Source};
use egui::RichText;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

/// The window's state (runtime only).
#[derive(Default)]
pub struct ModelManager {
    pub open: bool,
    pub list: Vec<Found>,
    /// The folder to import, as typed.
    pub import_path: String,
    /// A removal waiting for confirmation.
    pub confirm_remove: Option<String>,
    /// The pretrained checkpoint to import, as typed.
    pub checkpoint: CheckpointForm,
    /// The import running on its worker thread.
    pub importing: Option<Receiver<crate::error::Result<PathBuf>>>,
}

/// The fields of a checkpoint import (`models --import-checkpoint`).
#[derive(Default)]
pub struct CheckpointForm {
    pub path: String,
    pub name: String,
    pub config: String,
    pub key: String,
    pub licence: String,
}

impl ModelManager {
    /// The finished import's outcome, once (polled each frame: no waiting).
    pub fn poll_import(&mut self) -> Option<crate::error::Result<PathBuf>> {
        let done = self.importing.as_ref()?.try_recv();
        match done {
            Ok(r) => {
                self.importing = None;
                Some(r)
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.importing = None;
                Some(Err(crate::error::Error::invalid(
                    "checkpoint import",
                    "the import stopped unexpectedly",
                )))
            }
        }
    }
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
            ui.separator();
            out.extend(checkpoint_ui(ui, m, user.is_some()));
        });
    if !open && m.open {
        m.confirm_remove = None;
    }
    m.open = open;
    out
}

/// The checkpoint import's fields and button (a spinner while it runs).
fn checkpoint_ui(ui: &mut egui::Ui, m: &mut ModelManager, user: bool) -> Option<Action> {
    ui.label(
        "Import a pretrained checkpoint: a guided-diffusion or consistency-models .pt with its \
         YAML config (assets/checkpoints/), or a diffusers model folder:",
    );
    let f = &mut m.checkpoint;
    egui::Grid::new("checkpoint-form")
        .num_columns(2)
        .show(ui, |ui| {
            for (label, value, hint) in [
                (
                    "checkpoint",
                    &mut f.path,
                    "/path/to/ffhq_10m.pt or a diffusers folder",
                ),
                ("name", &mut f.name, "ffhq"),
                (
                    "config",
                    &mut f.config,
                    "assets/checkpoints/ffhq_10m.yaml (not for diffusers)",
                ),
                (
                    "nested key",
                    &mut f.key,
                    "ema (only if the weights are nested)",
                ),
                (
                    "licence",
                    &mut f.licence,
                    "the weights' licence, for the card",
                ),
            ] {
                ui.label(label);
                ui.add(
                    egui::TextEdit::singleline(value)
                        .hint_text(hint)
                        .desired_width(380.0),
                );
                ui.end_row();
            }
        });
    if m.importing.is_some() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Importing: checking every tensor, then writing the model folder…");
        });
        return None;
    }
    let ready = user && !f.path.trim().is_empty() && !f.name.trim().is_empty();
    fn some(s: &str) -> Option<&str> {
        Some(s.trim()).filter(|s| !s.is_empty())
    }
    let clicked = ui
        .add_enabled(ready, egui::Button::new("Import checkpoint"))
        .on_hover_text("Checked first (every tensor and shape); nothing is written on failure")
        .clicked();
    clicked.then(|| {
        Action::ImportCheckpoint(crate::checkpoint::ImportRequest {
            path: PathBuf::from(f.path.trim()),
            name: f.name.trim().to_string(),
            config: some(&f.config).map(PathBuf::from),
            key: some(&f.key).map(String::from),
            licence: f.licence.trim().to_string(),
        })
    })
}
