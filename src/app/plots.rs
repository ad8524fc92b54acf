//! The run's figures over steps, from the engine's per-step trace (every step is kept, however
//! few frames reached the screen): σ with the current position, the normalised residual of the
//! first chains on a log scale, PSNR of the mean against the truth when it is known.

use crate::engine::Snapshot;
use egui_plot::{HLine, Line, Plot, PlotPoints, VLine};

pub fn plots_ui(ui: &mut egui::Ui, snap: &Snapshot) {
    let anneals = snap.inputs.as_ref().is_none_or(|i| i.anneals);
    let spacing = ui.spacing().item_spacing.x;
    // Three plots and the gaps between them fill the width exactly (none is clipped).
    let w = ((ui.available_width() - 2.0 * spacing - 8.0) / 3.0).max(120.0);
    let h = (ui.available_height() - 24.0).clamp(80.0, 160.0);
    let trace = &snap.trace;
    let now = snap.step as f64;
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(w);
            if anneals {
                ui.label("log10 σ over steps");
                Plot::new("sigma")
                    .width(w)
                    .height(h)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        let pts: Vec<[f64; 2]> = trace
                            .iter()
                            .filter(|t| t.sigma > 0.0)
                            .map(|t| [t.step as f64, t.sigma.log10()])
                            .collect();
                        p.line(Line::new("log10 σ", PlotPoints::from(pts)));
                        p.vline(VLine::new("now", now));
                    });
            } else {
                ui.label("σ over steps");
                ui.label(
                    egui::RichText::new(
                        "This sampler follows no noise level: its chains are clean images at \
                         every step (Langevin in a fixed space, or exact draws).",
                    )
                    .weak(),
                );
            }
        });
        ui.vertical(|ui| {
            ui.set_width(w);
            ui.label("log10 |y - A(x0-hat)| / (σ_y sqrt m) per chain (0 = fits the noise)");
            Plot::new("residual")
                .width(w)
                .height(h)
                .allow_scroll(false)
                .show(ui, |p| {
                    let chains = trace.iter().map(|t| t.residuals.len()).max().unwrap_or(0);
                    for k in 0..chains {
                        let pts: Vec<[f64; 2]> = trace
                            .iter()
                            .filter_map(|t| t.residuals.get(k).map(|r| (t.step, *r)))
                            .map(|(s, r)| [s as f64, r.max(1e-3).log10()])
                            .collect();
                        p.line(Line::new(format!("chain {k}"), PlotPoints::from(pts)));
                    }
                    p.hline(HLine::new("fits the noise", 0.0));
                });
        });
        ui.vertical(|ui| {
            ui.set_width(w);
            ui.label("PSNR of the mean vs truth (dB)");
            Plot::new("psnr")
                .width(w)
                .height(h)
                .allow_scroll(false)
                .show(ui, |p| {
                    let pts: Vec<[f64; 2]> = trace
                        .iter()
                        .filter_map(|t| {
                            t.psnr.filter(|v| v.is_finite()).map(|v| [t.step as f64, v])
                        })
                        .collect();
                    p.line(Line::new("PSNR", PlotPoints::from(pts)));
                });
        });
    });
}
