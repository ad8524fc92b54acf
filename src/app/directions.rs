//! The uncertainty page's first half: the share of variance per principal direction, the
//! directions as pictures (click one), the mean moved along the chosen one, the chain nearest
//! to that point, and the direction itself with its scale.

use super::uncertainty::{Explorer, UncertaintyPrefs, UncertaintyView};
use super::views::{self, Tex, ViewWindow};
use crate::engine::UncertaintyFrame;
use crate::uncertainty::Pca;
use egui::{Color32, RichText, Sense};
use egui_plot::{Bar, BarChart, Plot};

/// The size of a view and the tint of stale results.
#[derive(Clone, Copy)]
pub struct Look {
    pub side: f32,
    pub tint: Color32,
}

const CHOSEN: Color32 = Color32::from_rgb(255, 210, 60);

/// The spectrum, the directions, and the picture moved along the chosen one.
pub fn components_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    frame: &UncertaintyFrame,
    prefs: &mut UncertaintyPrefs,
    explorer: &mut Explorer,
    window: &mut ViewWindow,
    look: Look,
) {
    let pca = &frame.pca;
    let k = pca.k();
    if k == 0 {
        ui.label("One chain has no spread to analyse: run at least 2 chains.");
        return;
    }
    prefs.component = prefs.component.min(k - 1);
    ui.horizontal(|ui| {
        ui.vertical(|ui| spectrum_ui(ui, pca, prefs.component, look.side));
        ui.vertical(|ui| directions_ui(ui, v, pca, &mut prefs.component, window, look));
    });
    let i = prefs.component;
    ui.horizontal(|ui| {
        let mut new_window = *window;
        let mut interact = |shown: (egui::Response, Option<views::ImageTransform>)| {
            if let (r, Some(t)) = shown {
                new_window.interact(&t, &r, true);
            }
        };
        ui.vertical(|ui| {
            let title = format!("Mean moved along direction {}", i + 1);
            interact(views::image_view(
                ui,
                &title,
                &v.tex.moved,
                window,
                look.side,
                look.tint,
            ));
            ui.add(
                egui::Slider::new(&mut explorer.t, -3.0..=3.0)
                    .text("standard deviations")
                    .fixed_decimals(2),
            );
            ui.checkbox(&mut explorer.animate, "Animate");
        });
        ui.vertical(|ui| interact(nearest_ui(ui, v, pca, i, explorer.t, window, look)));
        ui.vertical(|ui| interact(direction_ui(ui, v, pca, i, window, look)));
        *window = new_window;
    });
}

/// The bar plot of the share of variance per direction.
fn spectrum_ui(ui: &mut egui::Ui, pca: &Pca, chosen: usize, side: f32) {
    let explained = pca.explained();
    ui.set_width(side * 1.3);
    let top3: f64 = explained.iter().take(3).sum();
    ui.label(format!(
        "Share of the variance per direction (first 3: {:.0}%)",
        top3 * 100.0
    ));
    Plot::new("spectrum")
        .width(side * 1.3)
        .height(side * 0.8)
        .allow_scroll(false)
        .allow_drag(false)
        .include_y(0.0)
        .show(ui, |p| {
            let bars = (explained.iter().enumerate())
                .map(|(i, f)| {
                    let bar = Bar::new((i + 1) as f64, f * 100.0).width(0.7);
                    if i == chosen { bar.fill(CHOSEN) } else { bar }
                })
                .collect();
            p.bar_chart(BarChart::new("% of variance", bars));
        });
    let note = format!(
        "{} chains span at most {} directions.",
        pca.chains,
        pca.chains - 1
    );
    ui.label(RichText::new(note).weak());
}

/// Every direction as a small picture; a click chooses it.
fn directions_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    pca: &Pca,
    chosen: &mut usize,
    window: &ViewWindow,
    look: Look,
) {
    let explained = pca.explained();
    ui.label("Directions (click one; red +, blue −)");
    let cols = 4;
    let cell = (look.side * 1.3 / cols as f32 - 4.0).max(40.0);
    egui::Grid::new("directions")
        .spacing([4.0, 4.0])
        .show(ui, |ui| {
            for i in 0..pca.k() {
                let label = format!("Direction {}", i + 1);
                ui.vertical(|ui| {
                    let share = format!("{}: {:.0}%", i + 1, explained[i] * 100.0);
                    ui.label(RichText::new(share).small());
                    let (rect, resp) =
                        ui.allocate_exact_size(egui::vec2(cell, cell), Sense::click());
                    resp.widget_info(|| {
                        egui::WidgetInfo::labeled(egui::Role::Button, true, &label)
                    });
                    let painter = ui.painter_at(rect);
                    if let Some(tex) = v.tex.components.get(i) {
                        views::paint_image(&painter, rect, tex, window, look.tint);
                    }
                    if i == *chosen {
                        let stroke = egui::Stroke::new(2.5, CHOSEN);
                        painter.rect_stroke(rect, 2.0, stroke, egui::StrokeKind::Inside);
                    }
                    if resp.clicked() {
                        *chosen = i;
                    }
                });
                if (i + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
}

/// The shown chain nearest to the mean moved t standard deviations along direction i.
fn nearest_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    pca: &Pca,
    i: usize,
    t: f64,
    window: &ViewWindow,
    look: Look,
) -> (egui::Response, Option<views::ImageTransform>) {
    let nearest = pca.nearest_chain(i, t, v.chains.len());
    let tex = nearest
        .filter(|_| v.chains_are_x0)
        .and_then(|(j, _)| v.chains.get(j));
    let empty = Tex::default();
    let tex = tex.unwrap_or(&empty);
    let shown = views::image_view(ui, "Nearest chain", tex, window, look.side, look.tint);
    match nearest {
        Some((j, dist)) => {
            ui.label(format!("chain {} of the {} shown", j + 1, v.chains.len()));
            ui.label(RichText::new(format!("RMS distance {dist:.3}")).weak());
            if !v.chains_are_x0 {
                ui.label(RichText::new("Show chains as x0-hat to see it.").weak());
            }
        }
        None => {
            ui.label("—");
        }
    }
    shown
}

/// Direction i as a picture on its diverging scale, with its standard deviation.
fn direction_ui(
    ui: &mut egui::Ui,
    v: &UncertaintyView,
    pca: &Pca,
    i: usize,
    window: &ViewWindow,
    look: Look,
) -> (egui::Response, Option<views::ImageTransform>) {
    let title = format!("Direction {}", i + 1);
    let shown = ui
        .horizontal(|ui| {
            let empty = Tex::default();
            let tex = v.tex.components.get(i).unwrap_or(&empty);
            let shown = views::image_view(ui, &title, tex, window, look.side, look.tint);
            let top = v.tex.component_top.get(i).copied().unwrap_or(0.0);
            views::diverging_colorbar(ui, top, look.side - 50.0, "value");
            shown
        })
        .inner;
    let explained = pca.explained();
    ui.label(
        RichText::new(format!(
            "std along it {:.3}, {:.1}% of the variance",
            pca.variances[i].sqrt(),
            explained[i] * 100.0
        ))
        .weak(),
    );
    shown
}
