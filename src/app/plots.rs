//! The run's figures over steps: σ with the current position, the normalised residual of every
//! shown chain, PSNR of the mean against the truth when it is known.

use crate::engine::Snapshot;
use egui_plot::{Line, Plot, PlotPoints, VLine};

#[derive(Debug, Default, Clone)]
pub struct History {
    /// (step, σ)
    pub sigma: Vec<[f64; 2]>,
    /// Per chain: (step, residual)
    pub residual: Vec<Vec<[f64; 2]>>,
    /// (step, PSNR dB)
    pub psnr: Vec<[f64; 2]>,
    pub total_steps: usize,
    pub step: usize,
}

/// Chains whose residual is plotted (enough to see the spread, few enough to read).
const PLOTTED: usize = 8;

impl History {
    pub fn push(&mut self, s: &Snapshot) {
        let step = s.step as f64;
        self.total_steps = s.total_steps;
        self.step = s.step;
        // The start frame holds no estimate yet (x̂0 = 0), and whether the window sees it before
        // a fast first step replaces it is a matter of timing: plot from step 1.
        if s.step > 0 && self.sigma.last().is_none_or(|p| p[0] < step) {
            self.sigma.push([step, s.sigma.max(1e-6)]);
            let n = s.residuals.len().min(PLOTTED);
            self.residual.resize(n, vec![]);
            for (k, r) in s.residuals.iter().take(n).enumerate() {
                self.residual[k].push([step, *r]);
            }
            if let Some(p) = s.psnr
                && p.is_finite()
            {
                self.psnr.push([step, p]);
            }
        }
    }

    pub fn ui(&self, ui: &mut egui::Ui) {
        let w = ((ui.available_width() - 24.0) / 3.0).max(120.0);
        let h = ui.available_height().clamp(90.0, 160.0);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("log10 σ over steps");
                Plot::new("sigma")
                    .width(w)
                    .height(h)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        let pts: Vec<[f64; 2]> =
                            self.sigma.iter().map(|[x, s]| [*x, s.log10()]).collect();
                        p.line(Line::new("log10 σ", PlotPoints::from(pts)));
                        p.vline(VLine::new("now", self.step as f64));
                    });
            });
            ui.vertical(|ui| {
                ui.label("residual |y - A(x0-hat)| / (σ_y sqrt m) per chain (1 = fits the noise)");
                Plot::new("residual")
                    .width(w)
                    .height(h)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        for (k, series) in self.residual.iter().enumerate() {
                            let pts: Vec<[f64; 2]> = series
                                .iter()
                                .map(|[x, r]| [*x, r.max(1e-3).log10()])
                                .collect();
                            p.line(Line::new(
                                format!("chain {k} (log10)"),
                                PlotPoints::from(pts),
                            ));
                        }
                        p.hline(egui_plot::HLine::new("fits the noise", 0.0));
                    });
            });
            ui.vertical(|ui| {
                ui.label("PSNR of the mean vs truth (dB)");
                Plot::new("psnr")
                    .width(w)
                    .height(h)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        p.line(Line::new("PSNR", PlotPoints::from(self.psnr.clone())));
                    });
            });
        });
    }
}
