//! File choices without blocking a frame: the platform's dialog runs on its own thread when
//! there is one; a path field always works, also where no dialog exists (no desktop portal).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// What a path is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    OpenImage,
    Export,
    SaveResult,
}

impl Purpose {
    fn title(self) -> &'static str {
        match self {
            Purpose::OpenImage => "Open an image",
            Purpose::Export => "Export the run",
            Purpose::SaveResult => "Save the restored picture",
        }
    }
    fn confirm(self) -> &'static str {
        match self {
            Purpose::OpenImage => "Open",
            Purpose::Export => "Export",
            Purpose::SaveResult => "Save",
        }
    }
}

/// What the user decided in the path window.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Open(PathBuf),
    Export(PathBuf),
    SaveResult(PathBuf),
}

/// The path window and a dialog that may be open behind it.
pub struct PathPrompt {
    pub purpose: Option<Purpose>,
    pub text: String,
    browsing: Option<Receiver<Option<PathBuf>>>,
    /// Whether the platform can show a file dialog (else only the path field is offered).
    pub dialog_available: bool,
}

impl Default for PathPrompt {
    fn default() -> Self {
        Self {
            purpose: None,
            text: String::new(),
            browsing: None,
            dialog_available: dialog_available(),
        }
    }
}

/// On Linux rfd talks to the desktop portal over the session bus: without a bus there is no
/// dialog (it would return at once as if cancelled). Elsewhere the system dialog exists.
pub fn dialog_available() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists())
}

impl PathPrompt {
    /// Opens the path window for `purpose`, prefilled with `text`.
    pub fn open(&mut self, purpose: Purpose, text: String) {
        self.purpose = Some(purpose);
        self.text = text;
    }

    /// Shows the platform dialog for the open window's purpose at once.
    pub fn browse_now(&mut self) {
        if let Some(p) = self.purpose {
            self.browse(p);
        }
    }

    fn browse(&mut self, purpose: Purpose) {
        let (tx, rx) = mpsc::channel();
        let start = PathBuf::from(&self.text);
        let spawned = std::thread::Builder::new()
            .name("posterior-lab-dialog".into())
            .spawn(move || {
                let dialog = rfd::FileDialog::new();
                let dialog = match start.parent() {
                    Some(p) if p.is_dir() => dialog.set_directory(p),
                    _ => dialog,
                };
                let picked = match purpose {
                    Purpose::OpenImage => dialog
                        .add_filter("images", &["png", "jpg", "jpeg"])
                        .pick_file(),
                    Purpose::Export => dialog.pick_folder(),
                    Purpose::SaveResult => dialog
                        .add_filter("PNG", &["png"])
                        .set_file_name("restored.png")
                        .save_file(),
                };
                let _ = tx.send(picked);
            });
        if spawned.is_ok() {
            self.browsing = Some(rx);
        }
    }

    /// Draws the path window when it is open; returns the user's decision.
    pub fn ui(&mut self, ctx: &egui::Context) -> Option<Choice> {
        // A dialog's answer fills the field; Cancel leaves it as it was.
        if let Some(rx) = &self.browsing {
            match rx.try_recv() {
                Ok(Some(p)) => {
                    self.text = p.display().to_string();
                    self.browsing = None;
                }
                Ok(None) | Err(TryRecvError::Disconnected) => self.browsing = None,
                Err(TryRecvError::Empty) => {
                    ctx.request_repaint_after(std::time::Duration::from_millis(100))
                }
            }
        }
        let purpose = self.purpose?;
        let mut choice = None;
        let mut close = false;
        egui::Window::new(purpose.title())
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.label(match purpose {
                    Purpose::OpenImage => "A PNG or JPEG file:",
                    Purpose::Export => {
                        "A folder (a new one is made inside it if it is not empty; \
                         nothing is ever overwritten):"
                    }
                    Purpose::SaveResult => {
                        "A PNG file for the posterior mean at its full size (an existing \
                         file is not overwritten: the name gets a number):"
                    }
                });
                ui.add(
                    egui::TextEdit::singleline(&mut self.text)
                        .desired_width(420.0)
                        .id_salt("path-field"),
                );
                ui.horizontal(|ui| {
                    let browse = ui.add_enabled(
                        self.dialog_available && self.browsing.is_none(),
                        egui::Button::new("Browse…"),
                    );
                    if !self.dialog_available {
                        browse.on_disabled_hover_text(
                            "No file dialog is available here (no desktop portal): type the path",
                        );
                    } else if browse.clicked() {
                        self.browse(purpose);
                    }
                    if ui.button(purpose.confirm()).clicked() && !self.text.trim().is_empty() {
                        let p = PathBuf::from(self.text.trim());
                        choice = Some(match purpose {
                            Purpose::OpenImage => Choice::Open(p),
                            Purpose::Export => Choice::Export(p),
                            Purpose::SaveResult => Choice::SaveResult(p),
                        });
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
                if !self.dialog_available {
                    ui.label(
                        egui::RichText::new("No file dialog on this system: type a path.")
                            .small()
                            .weak(),
                    );
                }
            });
        if close {
            self.purpose = None;
        }
        choice
    }
}

/// The folder an export goes to: `chosen` itself when it does not exist or is empty, else the
/// first free `posterior-lab-export-N` inside it. Never an existing file or a folder with files.
pub fn export_target(chosen: &Path) -> PathBuf {
    let empty_dir = |p: &Path| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none());
    if !chosen.exists() || empty_dir(chosen) {
        return chosen.to_path_buf();
    }
    let base = if chosen.is_dir() {
        chosen.to_path_buf()
    } else {
        chosen.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    (1..)
        .map(|n| base.join(format!("posterior-lab-export-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| base.join("posterior-lab-export"))
}

/// Where exports go unless the user says otherwise: a fresh folder in the home folder.
pub fn default_export_folder() -> PathBuf {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    export_target(&home.join("posterior-lab-exports"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_never_lands_in_a_folder_with_files() {
        let root = std::env::temp_dir().join(format!("pl-export-target-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(export_target(&root), root, "a missing folder is used as is");
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(export_target(&root), root, "an empty folder is used as is");
        std::fs::write(root.join("mean.png"), b"x").unwrap();
        let first = export_target(&root);
        assert_eq!(first, root.join("posterior-lab-export-1"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::write(first.join("a"), b"x").unwrap();
        assert_eq!(export_target(&root), root.join("posterior-lab-export-2"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
