//! The uncertainty view: how the chains vary (principal directions of their estimates, a
//! slider that moves the picture along one, the chain nearest to it) and whether their spread
//! can be trusted (credible-interval images, coverage against the truth, z², CRPS, the pixels
//! the truth escapes). The engine computes every figure; this panel only draws them.

use super::textures::UncertaintyTextures;
use super::views::{self, Tex, ViewWindow};
use crate::engine::UncertaintyFrame;
use crate::uncertainty::LEVELS;
use egui::{Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, Points};

/// What the view remembers between launches.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UncertaintyPrefs {
    /// The principal direction shown and moved along (0 = largest variance).
    pub component: usize,
    /// Coverage over all pixels or only those the operator does not see.
    pub unseen_only: bool,
    /// Spread as the 95% interval width (else the standard deviation).
    pub show_width: bool,
    pub section: Section,
}

/// The two halves of the page, one screen each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Section {
    /// Spectrum, directions, the picture moved along one, the nearest chain.
    #[default]
    Directions,
    /// Interval images, coverage, z², CRPS and the maps.
    Calibration,
}

impl Default for UncertaintyPrefs {
    fn default() -> Self {
        Self {
            component: 0,
            unseen_only: false,
            show_width: true,
            section: Section::Directions,
        }
    }
}

/// Where the slider stands (runtime only).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Explorer {
    /// Position along the direction in standard deviations.
    pub t: f64,
    /// The slider sweeps back and forth by itself.
    pub animate: bool,
}

impl Explorer {
    /// Seconds per sweep of the animation, and its reach in standard deviations.
    const PERIOD: f64 = 4.0;
    const REACH: f64 = 2.5;

    /// Moves the slider when animating (call once per frame, before drawing).
    pub fn tick(&mut self, ctx: &egui::Context) {
        if self.animate {
            let time = ctx.input(|i| i.time);
            self.t = Self::REACH * (std::f64::consts::TAU * time / Self::PERIOD).sin();
            ctx.request_repaint();
        }
    }
}

/// What the panel draws.
pub struct UncertaintyView<'a> {
    pub frame: Option<&'a UncertaintyFrame>,
    pub tex: &'a UncertaintyTextures,
    /// The run's posterior mean and chain pictures (the first chains of the run).
    pub mean: &'a Tex,
    pub chains: &'a [Tex],
    /// The chain pictures are the x̂0 estimates the components are computed from.
    pub chains_are_x0: bool,
    pub chains_total: usize,
    pub has_truth: bool,
    /// The results are from other choices than the panel's now.
    pub stale: bool,
    /// Show how long the engine took (off in snapshot tests).
    pub timings: bool,
}

pub fn uncertainty_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    prefs: &mut UncertaintyPrefs,
    explorer: &mut Explorer,
    window: &mut ViewWindow,
) {
    let Some(frame) = v.frame else {
        ui.label("The uncertainty figures appear once a run has produced its first frames.");
        return;
    };
    let side = ((ui.available_width() - 80.0) / 4.0).clamp(96.0, 220.0);
    let tint = if v.stale {
        Color32::from_gray(110)
    } else {
        Color32::WHITE
    };
    if v.stale {
        ui.label(RichText::new("From the previous choices: press Run to update.").weak());
    }
    let took = if v.timings {
        format!(
            " (computed by the engine in {:.0} ms)",
            frame.seconds * 1000.0
        )
    } else {
        String::new()
    };
    ui.label(
        RichText::new(format!(
            "Figures of all {} chains' estimates at step {}{took}.",
            v.chains_total, frame.step
        ))
        .weak(),
    );
    ui.horizontal(|ui| {
        ui.selectable_value(
            &mut prefs.section,
            Section::Directions,
            "How the chains vary",
        );
        ui.selectable_value(
            &mut prefs.section,
            Section::Calibration,
            "Intervals and calibration",
        );
    });
    match prefs.section {
        Section::Directions => {
            let look = super::directions::Look { side, tint };
            super::directions::components_ui(ui, v, frame, prefs, explorer, window, look)
        }
        Section::Calibration => {
            intervals_ui(ui, v, prefs, window, side, tint);
            ui.separator();
            calibration_ui(ui, v, frame, prefs, window, side, tint);
        }
    }
}

/// 2.5% and 97.5% quantile images beside the mean, and the spread as width or std.
fn intervals_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    prefs: &mut UncertaintyPrefs,
    window: &mut ViewWindow,
    side: f32,
    tint: Color32,
) {
    let (heading, lower, upper) = match v.tex.calibrated {
        Some(f) => (
            format!("Per-pixel 95% interval, calibrated (×{f:.1})"),
            "Lower end",
            "Upper end",
        ),
        None => (
            "Per-pixel 95% credible interval".to_string(),
            "2.5% quantile",
            "97.5% quantile",
        ),
    };
    ui.horizontal(|ui| {
        ui.label(RichText::new(heading).strong()).on_hover_text(
            "Calibrated: the mean ± 1.96 × the calibrated std (the chains' std scaled as the \
             prior's card measured on held-out photos); \"raw spread\" in the toolbar shows \
             the chains' own 2.5% and 97.5% quantiles",
        );
        ui.radio_value(&mut prefs.show_width, true, "interval width");
        ui.radio_value(&mut prefs.show_width, false, "standard deviation");
    });
    let mut new_window = *window;
    ui.horizontal(|ui| {
        for (title, tex) in [
            (lower, &v.tex.lower),
            ("Mean", v.mean),
            (upper, &v.tex.upper),
        ] {
            let (r, t) = views::image_view(ui, title, tex, window, side * 0.7, tint);
            if let Some(t) = t {
                new_window.interact(&t, &r, true);
            }
        }
        let title = if prefs.show_width {
            "Interval width"
        } else {
            "Standard deviation"
        };
        let (r, t) = views::image_view(ui, title, &v.tex.spread, window, side * 0.7, tint);
        if let Some(t) = t {
            new_window.interact(&t, &r, true);
        }
        views::colorbar(ui, v.tex.spread_top, side * 0.7 - 30.0, "");
    });
    *window = new_window;
}

/// Coverage against the nominal levels, z², CRPS and the maps, when the truth is known.
fn calibration_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    frame: &UncertaintyFrame,
    prefs: &mut UncertaintyPrefs,
    window: &mut ViewWindow,
    side: f32,
    tint: Color32,
) {
    ui.label(RichText::new("Can the spread be trusted? Coverage of the truth").strong());
    let Some(cal) = frame.stats.calibration.as_ref().filter(|_| v.has_truth) else {
        ui.label(
            "Needs the truth: simulate y from a picture (the designer does) instead of \
             restoring a degraded one.",
        );
        return;
    };
    let has_unseen = cal.unseen.is_some();
    if !has_unseen {
        prefs.unseen_only = false;
    }
    let region = match (&cal.unseen, prefs.unseen_only) {
        (Some(u), true) => u,
        _ => &cal.all,
    };
    let coverage = &region.coverage;
    let n = frame.pca.chains;
    // Levels whose interval is the sample range with n chains: coverage at most (n−1)/(n+1).
    let resolvable = 1.0 - 2.0 / (n as f64 + 1.0);
    let mut new_window = *window;
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(side * 1.2);
            ui.horizontal(|ui| {
                ui.radio_value(&mut prefs.unseen_only, false, "all pixels");
                ui.add_enabled_ui(has_unseen, |ui| {
                    ui.radio_value(&mut prefs.unseen_only, true, "unseen pixels")
                        .on_disabled_hover_text("The operator sees every pixel.");
                });
            });
            Plot::new("calibration")
                .width(side * 1.1)
                .height(side * 1.1)
                .data_aspect(1.0)
                .include_x(0.0)
                .include_x(1.0)
                .include_y(0.0)
                .include_y(1.0)
                .allow_scroll(false)
                .allow_drag(false)
                .x_axis_label("nominal level")
                .y_axis_label("observed coverage")
                .show(ui, |p| {
                    p.line(
                        Line::new("calibrated", PlotPoints::from(vec![[0.0, 0.0], [1.0, 1.0]]))
                            .color(Color32::GRAY),
                    );
                    let pts: Vec<[f64; 2]> = coverage.iter().map(|(l, f)| [*l, *f]).collect();
                    p.line(Line::new("observed", PlotPoints::from(pts.clone())));
                    p.points(Points::new("observed", PlotPoints::from(pts)).radius(4.0));
                });
        });
        ui.vertical(|ui| {
            ui.set_max_width(side * 1.4);
            egui::Grid::new("calibration-figures")
                .num_columns(2)
                .show(ui, |ui| {
                    for (level, f) in coverage {
                        ui.label(format!("{:.0}% interval", level * 100.0));
                        let mut text = RichText::new(format!("covers {:.1}%", f * 100.0));
                        if (f - level).abs() > 0.1 {
                            text = text.color(Color32::from_rgb(240, 120, 80));
                        }
                        ui.label(text);
                        ui.end_row();
                    }
                    ui.label("z²");
                    ui.label(match region.z2 {
                        Some(z) => format!("{z:.2} (1 = calibrated)"),
                        None => "— (no pixel has spread)".into(),
                    });
                    ui.end_row();
                    ui.label("CRPS");
                    ui.label(format!("{:.4} (lower: better)", region.crps));
                    ui.end_row();
                });
            if LEVELS.iter().any(|l| *l > resolvable) {
                ui.label(
                    RichText::new(format!(
                        "With {n} chains, levels above {:.0}% use the sample range, which covers \
                         at most {:.0}%: run more chains to judge them.",
                        resolvable * 100.0,
                        (n as f64 - 1.0) / (n as f64 + 1.0) * 100.0
                    ))
                    .weak(),
                );
            }
        });
        let missed =
            cal.surprise.iter().filter(|s| **s).count() as f64 / cal.surprise.len().max(1) as f64;
        ui.vertical(|ui| {
            let (r, t) = views::image_view(
                ui,
                "Truth outside 95%",
                &v.tex.surprise,
                window,
                side * 0.8,
                tint,
            );
            if let Some(t) = t {
                new_window.interact(&t, &r, true);
            }
            ui.label(RichText::new(format!("{:.1}% of values", missed * 100.0)).weak());
        });
        ui.vertical(|ui| {
            ui.horizontal_top(|ui| {
                let (r, t) =
                    views::image_view(ui, "CRPS per pixel", &v.tex.crps, window, side * 0.8, tint);
                if let Some(t) = t {
                    new_window.interact(&t, &r, true);
                }
                views::colorbar(ui, v.tex.crps_top, side * 0.8 - 30.0, "");
            });
        });
    });
    *window = new_window;
}
