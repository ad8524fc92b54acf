//! Time in the lab: the replay bar under the plot (play, scrub, speed, the shown step's figures)
//! and the plots over steps (σ schedule, sliced Wasserstein distance and mode-weight error of
//! the particles against exact posterior samples, each beside the spread between exact sets).

use super::{Lab, LabAction};
use egui_plot::{HLine, Line, Plot, PlotPoints, VLine};

/// The replay bar; `timings`: show seconds (off in tests).
pub fn timeline_ui(ui: &mut egui::Ui, lab: &mut Lab, timings: bool) -> Vec<LabAction> {
    let mut out = vec![];
    let Some(run) = &lab.run else {
        ui.label("Press Run particles (or Space) to start the chosen sampler.");
        return out;
    };
    let last = run.frames.len().saturating_sub(1);
    ui.horizontal(|ui| {
        let label = if lab.playback.playing {
            "Pause replay"
        } else {
            "Play replay"
        };
        if ui.button(label).clicked() {
            out.push(LabAction::TogglePlay);
        }
        let mut k = (lab.playback.pos.max(0.0) as usize).min(last);
        let r = ui.add_enabled(
            last > 0,
            egui::Slider::new(&mut k, 0..=last.max(1)).text("step"),
        );
        if r.changed() {
            out.push(LabAction::Seek(k));
        }
        let r = ui.add(
            egui::DragValue::new(&mut lab.prefs.replay_seconds)
                .range(0.5..=60.0)
                .speed(0.1)
                .prefix("replay in ")
                .suffix(" s"),
        );
        super::panel::named(r, egui::Role::SpinButton, "replay seconds".into());
    });
    let mut status = match (&run.error, run.finished) {
        (Some(e), _) => format!("{}: {e}", run.sampler),
        (None, true) if timings => format!("{} done in {:.2} s", run.sampler, run.seconds),
        (None, true) => format!("{} done", run.sampler),
        (None, false) => {
            let total = run.info.as_ref().map_or(0, |i| i.total_steps);
            format!("{} running: {} of {total} steps", run.sampler, last)
        }
    };
    if run.stale {
        status.push_str(" · the scene changed since: Run particles again");
    }
    let colour = if run.error.is_some() {
        egui::Color32::from_rgb(200, 40, 40)
    } else {
        ui.visuals().text_color()
    };
    ui.colored_label(colour, status);
    if let (Some(f), Some(info)) = (lab.shown(), &run.info) {
        ui.label(format!(
            "step {} of {} · σ {:.3} · NFE {} · SW {:.3} (exact sets {:.3} ± {:.3}) · mode error {:.3} (exact sets {:.3} ± {:.3})",
            f.step,
            info.total_steps,
            f.sigma,
            f.nfe,
            f.sw,
            info.sw_floor.0,
            info.sw_floor.1,
            f.mode_error,
            info.mode_floor.0,
            info.mode_floor.1,
        ));
    }
    out
}

/// The three plots over steps, with the shown step marked.
pub fn charts_ui(ui: &mut egui::Ui, lab: &Lab) {
    let Some(run) = &lab.run else {
        ui.label("The σ schedule and the particles' distance to the exact posterior appear when a run starts.");
        return;
    };
    let now = lab.shown().map_or(0.0, |f| f.step as f64);
    let spacing = ui.spacing().item_spacing.x;
    let w = ((ui.available_width() - 2.0 * spacing - 8.0) / 3.0).max(120.0);
    let h = (ui.available_height() - 24.0).clamp(80.0, 160.0);
    let series = |f: &dyn Fn(&crate::lab::Frame) -> Option<f64>| -> Vec<[f64; 2]> {
        run.frames
            .iter()
            .filter_map(|fr| f(fr).filter(|v| v.is_finite()).map(|v| [fr.step as f64, v]))
            .collect()
    };
    let floor = run.info.as_ref().map(|i| (i.sw_floor, i.mode_floor));
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(w);
            ui.label("log10 σ over steps");
            Plot::new("lab-sigma")
                .width(w)
                .height(h)
                .allow_scroll(false)
                .show(ui, |p| {
                    let pts = series(&|f| (f.sigma > 0.0).then(|| f.sigma.log10()));
                    p.line(Line::new("log10 σ", PlotPoints::from(pts)));
                    p.vline(VLine::new("shown step", now));
                });
        });
        for (title, id, pick, floor) in [
            (
                "sliced Wasserstein to the exact posterior (x0-hat)",
                "lab-sw",
                0usize,
                floor.map(|f| f.0),
            ),
            (
                "mode-weight error (x0-hat)",
                "lab-modes",
                1,
                floor.map(|f| f.1),
            ),
        ] {
            ui.vertical(|ui| {
                ui.set_width(w);
                ui.label(title);
                Plot::new(id)
                    .width(w)
                    .height(h)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        let pts = series(&|f| Some(if pick == 0 { f.sw } else { f.mode_error }));
                        p.line(Line::new("particles", PlotPoints::from(pts)));
                        if let Some((m, s)) = floor {
                            p.hline(HLine::new("exact sets: mean", m));
                            p.hline(HLine::new("exact sets: mean + 2 sd", m + 2.0 * s));
                        }
                        p.vline(VLine::new("shown step", now));
                    });
            });
        }
    });
}
