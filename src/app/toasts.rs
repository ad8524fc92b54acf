//! Short messages in the window's corner: errors stay longer than notes.

use egui::{Color32, RichText};
use std::time::{Duration, Instant};

struct Toast {
    text: String,
    error: bool,
    until: Instant,
}

#[derive(Default)]
pub struct Toasts {
    items: Vec<Toast>,
    /// Every message shown so far (tests read it; the window never clears it).
    pub log: Vec<String>,
}

impl Toasts {
    pub fn error(&mut self, text: impl Into<String>) {
        self.push(text.into(), true);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(text.into(), false);
    }

    fn push(&mut self, text: String, error: bool) {
        self.log.push(text.clone());
        let secs = if error { 10 } else { 5 };
        self.items.push(Toast {
            text,
            error,
            until: Instant::now() + Duration::from_secs(secs),
        });
    }

    pub fn ui(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.items.retain(|t| t.until > now);
        if self.items.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("posterior-lab-toasts"))
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-12.0, 40.0))
            .show(ctx, |ui| {
                for t in &self.items {
                    let fill = if t.error {
                        Color32::from_rgb(110, 30, 30)
                    } else {
                        Color32::from_rgb(30, 70, 40)
                    };
                    egui::Frame::popup(ui.style()).fill(fill).show(ui, |ui| {
                        ui.set_max_width(440.0);
                        ui.label(RichText::new(&t.text).color(Color32::WHITE));
                    });
                }
            });
        ctx.request_repaint_after(Duration::from_millis(250));
    }
}
