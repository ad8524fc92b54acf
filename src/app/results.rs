//! The central panel: truth, y (the brush paints here), the posterior mean, the spread with its
//! scale, a before/after split and the chains. One zoom/pan window and one screen↔picture
//! transform per view ([`ImageTransform`]) serve the brush, the zoom and the pan alike.

use super::actions::Action;
use super::textures::{PreviewTextures, RunTextures};
use super::views::{self, ImageTransform, Tex, ViewWindow};
use egui::{Color32, RichText, Sense};

/// What the panel draws.
pub struct ResultsView<'a> {
    pub run: &'a RunTextures,
    pub preview: &'a PreviewTextures,
    /// A run has produced a frame.
    pub has_run: bool,
    /// The run's results are from other choices than the panel's now (dimmed and labelled).
    pub stale: bool,
    /// The y view is the brush's canvas (inpainting in the designer).
    pub painting: bool,
    /// Brush radius in picture pixels (the cursor circle).
    pub brush_radius: f32,
    pub show_x0: bool,
    pub show_std: bool,
    /// The mean view shows a classical first answer (its name) until the first step.
    pub first_answer: Option<&'static str>,
}

/// Where the y view's picture was drawn (tests and the brush read it), and the large view's
/// (the 1:1 button reads it).
#[derive(Debug, Default, Clone, Copy)]
pub struct Layout {
    pub y_view: Option<ImageTransform>,
    pub large_view: Option<ImageTransform>,
}

/// One view shown large, filling the central area (None: every view side by side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Focus {
    Truth,
    Y,
    Mean,
    Spread,
    BeforeAfter,
    /// The k-th chain shown.
    Chain(usize),
}

impl Focus {
    const VIEWS: [(Focus, &'static str); 5] = [
        (Focus::Truth, "Truth"),
        (Focus::Y, "y"),
        (Focus::Mean, "Mean"),
        (Focus::Spread, "Spread"),
        (Focus::BeforeAfter, "Before / after"),
    ];
}

pub fn results_ui(
    ui: &mut egui::Ui,
    v: &ResultsView,
    window: &mut ViewWindow,
    compare: &mut f32,
    layout: &mut Layout,
    focus: &mut Option<Focus>,
) -> Vec<Action> {
    let dim = if v.stale {
        Color32::from_gray(110)
    } else {
        Color32::WHITE
    };
    // Inputs: the run's while it matches the choices, else the choices' own (new y at once).
    let use_run_inputs = v.has_run && !v.stale && !v.painting;
    let y = if use_run_inputs {
        &v.run.y
    } else {
        &v.preview.y
    };
    if let Some(which) = *focus {
        return large_ui(
            ui,
            v,
            y,
            use_run_inputs,
            window,
            compare,
            layout,
            focus,
            which,
        );
    }
    layout.large_view = None;
    let side = ((ui.available_width() - 60.0) / 4.0).clamp(96.0, 280.0);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Show large:").weak());
        for (f, name) in Focus::VIEWS {
            if ui.small_button(name).clicked() {
                *focus = Some(f);
            }
        }
        ui.label(RichText::new("(or click a chain)").weak());
    });
    let out = top_row(ui, v, y, use_run_inputs, window, layout, side, dim);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(RichText::new("Before / after").strong());
            before_after(
                ui,
                y,
                &v.run.mean,
                window,
                compare,
                egui::vec2(side, side),
                dim,
            );
        });
        ui.vertical(|ui| {
            if let Some(k) = chains_ui(ui, v, window, side, dim) {
                *focus = Some(Focus::Chain(k));
            }
        });
    });
    out
}

/// One view filling the central area, at any zoom up to one picture pixel per screen pixel
/// (1:1), with the choice of view above it; zoom and pan stay shared with the other views.
#[allow(clippy::too_many_arguments)]
fn large_ui(
    ui: &mut egui::Ui,
    v: &ResultsView,
    y: &Tex,
    use_run_inputs: bool,
    window: &mut ViewWindow,
    compare: &mut f32,
    layout: &mut Layout,
    focus: &mut Option<Focus>,
    which: Focus,
) -> Vec<Action> {
    let mut out = vec![];
    ui.horizontal_wrapped(|ui| {
        if ui.button("All views").clicked() {
            *focus = None;
        }
        for (f, name) in Focus::VIEWS {
            if ui.selectable_label(which == f, name).clicked() {
                *focus = Some(f);
            }
        }
        for k in 0..v.run.chains.len() {
            let name = format!("Chain {}", k + 1);
            if ui
                .selectable_label(which == Focus::Chain(k), name)
                .clicked()
            {
                *focus = Some(Focus::Chain(k));
            }
        }
        ui.separator();
        if ui
            .button("1:1")
            .on_hover_text("One picture pixel per screen pixel")
            .clicked()
            && let Some(t) = &layout.large_view
        {
            window.one_to_one(t, ui.ctx().pixels_per_point());
        }
        if ui
            .button("Fit")
            .on_hover_text("The whole picture")
            .clicked()
        {
            *window = ViewWindow::default();
        }
        ui.label(RichText::new(format!("zoom {:.1}×", window.zoom)).weak());
    });
    let size = ui.available_size() - egui::vec2(70.0, 60.0);
    let size = size.max(egui::vec2(96.0, 96.0));
    let dim = if v.stale {
        Color32::from_gray(110)
    } else {
        Color32::WHITE
    };
    if which == Focus::BeforeAfter {
        before_after(ui, y, &v.run.mean, window, compare, size, dim);
        return out;
    }
    let (title, tex, tint) = match which {
        Focus::Truth => (
            "Truth".to_string(),
            truth_of(v, use_run_inputs),
            Color32::WHITE,
        ),
        Focus::Y => (y_title(v).to_string(), y, Color32::WHITE),
        Focus::Mean => (mean_title(v), &v.run.mean, dim),
        Focus::Spread => (spread_title(v), &v.run.spread, dim),
        Focus::Chain(k) => match v.run.chains.get(k) {
            Some(t) => (format!("Chain {}", k + 1), t, dim),
            // Diverse samples ask for the chains before a run has any: say where they come.
            None => {
                ui.label(
                    RichText::new(format!("Chain {} shows here once a run has it", k + 1)).weak(),
                );
                return out;
            }
        },
        Focus::BeforeAfter => unreachable!("drawn above"),
    };
    let mut new_window = *window;
    ui.horizontal(|ui| {
        let (r, t) = views::image_view_sized(ui, &title, tex, window, size, tint);
        layout.large_view = t;
        if let Some(t) = t {
            let painting = v.painting && which == Focus::Y;
            new_window.interact(&t, &r, !painting);
            if painting {
                layout.y_view = Some(t);
                out.extend(brush(ui, &r, &t, v.brush_radius));
            }
        }
        if which == Focus::Spread && v.run.spread.get().is_some() {
            let unit = if v.show_std { "std" } else { "var" };
            views::colorbar(ui, v.run.spread_top, size.y - 60.0, unit);
        }
    });
    *window = new_window;
    out
}

/// The truth shown: the run's while it matches the choices, else the choices'.
fn truth_of<'a>(v: &'a ResultsView, use_run_inputs: bool) -> &'a Tex {
    if use_run_inputs && v.run.truth.get().is_some() {
        &v.run.truth
    } else {
        &v.preview.truth
    }
}

fn y_title(v: &ResultsView) -> &'static str {
    if v.painting {
        "y (paint here)"
    } else {
        "Measurement y"
    }
}

fn mean_title(v: &ResultsView) -> String {
    let suffix = if v.stale { " (previous choices)" } else { "" };
    match v.first_answer {
        Some(name) => format!("First answer ({name}), sampling…"),
        None => format!("Posterior mean{suffix}"),
    }
}

fn spread_title(v: &ResultsView) -> String {
    let what = if v.show_std {
        "Std per pixel"
    } else {
        "Variance per pixel"
    };
    match v.run.calibrated {
        Some(f) => format!("{what} (calibrated, ×{f:.1})"),
        None => what.to_string(),
    }
}

/// Truth, y, the mean and the spread with its scale, side by side; zoom and pan on any of them
/// move all.
#[allow(clippy::too_many_arguments)]
fn top_row(
    ui: &mut egui::Ui,
    v: &ResultsView,
    y: &Tex,
    use_run_inputs: bool,
    window: &mut ViewWindow,
    layout: &mut Layout,
    side: f32,
    dim: Color32,
) -> Vec<Action> {
    let mut out = vec![];
    let truth = truth_of(v, use_run_inputs);
    let mut new_window = *window;
    ui.horizontal(|ui| {
        let (r, t) = views::image_view(ui, "Truth", truth, window, side, Color32::WHITE);
        if let Some(t) = t {
            new_window.interact(&t, &r, true);
        }
        let (r, t) = views::image_view(ui, y_title(v), y, window, side, Color32::WHITE);
        layout.y_view = t;
        if let Some(t) = t {
            new_window.interact(&t, &r, !v.painting);
            if v.painting {
                out.extend(brush(ui, &r, &t, v.brush_radius));
            }
        }
        let (r, t) = views::image_view(ui, &mean_title(v), &v.run.mean, window, side, dim);
        if let Some(t) = t {
            new_window.interact(&t, &r, true);
        }
        let (r, t) = views::image_view(ui, &spread_title(v), &v.run.spread, window, side, dim);
        if let Some(t) = t {
            new_window.interact(&t, &r, true);
        }
        if v.run.spread.get().is_some() {
            let unit = if v.show_std { "std" } else { "var" };
            views::colorbar(ui, v.run.spread_top, side - 30.0, unit);
        }
    });
    *window = new_window;
    out
}

/// The brush on the y view: paint while the primary button is down, a circle of the brush's
/// size under the pointer.
fn brush(ui: &egui::Ui, resp: &egui::Response, t: &ImageTransform, radius: f32) -> Vec<Action> {
    let mut out = vec![];
    if resp.dragged_by(egui::PointerButton::Primary) || resp.clicked() {
        if let Some(p) = resp.interact_pointer_pos() {
            out.push(Action::Paint(t.image_from_ui(p)));
        }
        if resp.clicked() {
            out.push(Action::EndStroke);
        }
    }
    if resp.drag_stopped() {
        out.push(Action::EndStroke);
    }
    if let Some(p) = resp.hover_pos() {
        ui.painter_at(resp.rect).circle_stroke(
            p,
            radius * t.scale(),
            egui::Stroke::new(1.5, Color32::from_rgb(255, 210, 60)),
        );
    }
    out
}

/// y on the left of the split, the mean on the right, both letterboxed the same way.
fn before_after(
    ui: &mut egui::Ui,
    before: &Tex,
    after: &Tex,
    window: &ViewWindow,
    compare: &mut f32,
    size: egui::Vec2,
    tint: Color32,
) {
    let (rect, resp) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(30));
    if let (Some(b), Some(a)) = (before.get(), after.get()) {
        let t = ImageTransform::fit(rect, a.size(), window.uv());
        let split = t.inner.min.x + t.inner.width() * *compare;
        let uv_split = t.uv.min.x + t.uv.width() * *compare;
        let left = egui::Rect::from_min_max(t.inner.min, egui::pos2(split, t.inner.max.y));
        let right = egui::Rect::from_min_max(egui::pos2(split, t.inner.min.y), t.inner.max);
        painter.image(
            b.id(),
            left,
            egui::Rect::from_min_max(t.uv.min, egui::pos2(uv_split, t.uv.max.y)),
            Color32::WHITE,
        );
        painter.image(
            a.id(),
            right,
            egui::Rect::from_min_max(egui::pos2(uv_split, t.uv.min.y), t.uv.max),
            tint,
        );
        painter.line_segment(
            [
                egui::pos2(split, t.inner.min.y),
                egui::pos2(split, t.inner.max.y),
            ],
            egui::Stroke::new(2.0, Color32::YELLOW),
        );
        if resp.dragged()
            && let Some(p) = resp.interact_pointer_pos()
        {
            *compare = ((p.x - t.inner.min.x) / t.inner.width()).clamp(0.0, 1.0);
        }
    }
    ui.add(
        egui::Slider::new(compare, 0.0..=1.0)
            .show_value(false)
            .text("split"),
    );
}

/// The chains as thumbnails; returns the one clicked (shown large).
fn chains_ui(
    ui: &mut egui::Ui,
    v: &ResultsView,
    window: &ViewWindow,
    side: f32,
    tint: Color32,
) -> Option<usize> {
    let what = if v.show_x0 {
        "Chains (x0-hat)"
    } else {
        "Chains (x_t, scaled by 1/sqrt(1+σ²))"
    };
    ui.label(RichText::new(what).strong());
    let n = v.run.chains.len();
    if n == 0 {
        ui.label("—");
        return None;
    }
    let cols = (n as f32).sqrt().ceil().max(1.0) as usize;
    let cell = ((side * 1.3) / cols as f32).max(24.0);
    let mut clicked = None;
    egui::Grid::new("chains")
        .spacing([2.0, 2.0])
        .show(ui, |ui| {
            for (k, tex) in v.run.chains.iter().enumerate() {
                let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell, cell), Sense::click());
                let label = format!("Chain {}", k + 1);
                resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
                views::paint_image(&ui.painter_at(rect), rect, tex, window, tint);
                if resp.on_hover_text("Click to show it large").clicked() {
                    clicked = Some(k);
                }
                if (k + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
    clicked
}
