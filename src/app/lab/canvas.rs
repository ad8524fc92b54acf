//! The lab's plot of the plane: the density, the measurement, the prior's components with their
//! handles, the exact cloud, the particles and the arrows, drawn in one square with shared zoom
//! and pan. Dragging a mean moves it, dragging the ring handle changes its spread (so does the
//! wheel over a mean), a double click adds a component, the context menu of a mean removes it;
//! the measurement line has an offset and an angle handle. Edits come back as actions.

use super::{Lab, LabAction};
use crate::lab::picture::{Bounds, Picture};
use crate::lab::{Component, Field, Frame, LabScene, Measure};
use egui::{Color32, Pos2, Rect, Sense, Shape, Stroke, pos2, vec2};

/// Handles are picked within this many points.
const PICK: f32 = 9.0;

/// What can be dragged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Handle {
    Mean(usize),
    Spread(usize),
    LineOffset,
    LineAngle,
    Point,
}

/// A drag in progress: the handle and the scene when it began.
#[derive(Debug, Clone)]
struct Drag {
    handle: Option<Handle>,
    start: LabScene,
}

/// Canvas state kept between frames.
#[derive(Debug, Clone, Default)]
pub struct CanvasState {
    drag: Option<Drag>,
    /// Where the plot was drawn, and over which bounds (tests map plane points to the screen).
    pub rect: Option<Rect>,
    /// The recorded step whose particles were drawn last.
    pub drawn_step: Option<usize>,
    menu_for: Option<usize>,
}

/// Plane ↔ screen for a square plot.
#[derive(Debug, Clone, Copy)]
pub struct Transform {
    pub rect: Rect,
    pub bounds: Bounds,
}

impl Transform {
    pub fn to_screen(&self, p: [f64; 2]) -> Pos2 {
        let [w, h] = self.bounds.size();
        pos2(
            self.rect.min.x + ((p[0] - self.bounds.min[0]) / w) as f32 * self.rect.width(),
            self.rect.min.y + ((self.bounds.max[1] - p[1]) / h) as f32 * self.rect.height(),
        )
    }

    pub fn to_plane(&self, s: Pos2) -> [f64; 2] {
        let u = f64::from((s.x - self.rect.min.x) / self.rect.width());
        let v = f64::from((self.rect.max.y - s.y) / self.rect.height());
        self.bounds.at(u, v)
    }

    /// Screen points per plane unit.
    pub fn scale(&self) -> f32 {
        self.rect.width() / self.bounds.size()[0] as f32
    }
}

const PARTICLE: Color32 = Color32::from_rgb(230, 110, 20);
const PARTICLE_STALE: Color32 = Color32::from_rgb(170, 150, 130);
const REFERENCE: Color32 = Color32::from_rgba_premultiplied(60, 60, 60, 70);
const COMPONENT: Color32 = Color32::from_rgb(40, 40, 40);
const MEASURE: Color32 = Color32::from_rgb(20, 140, 70);

/// The colour of each arrow kind (the sampler's own arrow is orange-red, like its particles).
pub fn field_color(f: Field) -> Color32 {
    match f {
        Field::PriorScore => Color32::from_rgb(120, 120, 120),
        Field::PosteriorScore => Color32::from_rgb(30, 90, 200),
        Field::ExactGuidance => Color32::from_rgb(20, 150, 60),
        _ => Color32::from_rgb(215, 50, 30),
    }
}

/// The density as a texture: white to deep blue, square-root scaled so faint modes show.
pub fn density_texture(ctx: &egui::Context, p: &Picture) -> Option<egui::TextureHandle> {
    if p.density.is_empty() || p.grid == 0 {
        return None;
    }
    let pixels: Vec<Color32> = p
        .density
        .iter()
        .map(|v| {
            let t = v.clamp(0.0, 1.0).sqrt();
            let mix = |a: f32, b: f32| (a + (b - a) * t) as u8;
            Color32::from_rgb(mix(252.0, 25.0), mix(252.0, 70.0), mix(255.0, 160.0))
        })
        .collect();
    let img = egui::ColorImage::new([p.grid, p.grid], pixels);
    Some(ctx.load_texture("lab-density", img, egui::TextureOptions::LINEAR))
}

/// The field length drawn as one full arrow cell: the 80th percentile of all shown arrows'
/// lengths, so most arrows are readable and lengths compare across fields.
pub fn arrow_scale(p: &Picture) -> f64 {
    let mut norms: Vec<f64> = p
        .fields
        .iter()
        .flat_map(|(_, v)| v.iter().map(|g| g[0].hypot(g[1])))
        .filter(|n| n.is_finite())
        .collect();
    if norms.is_empty() {
        return 1.0;
    }
    norms.sort_by(f64::total_cmp);
    norms[(norms.len() - 1) * 4 / 5].max(1e-12)
}

/// Draws the plot and returns the edits asked for.
pub fn canvas_ui(ui: &mut egui::Ui, lab: &mut Lab) -> Vec<LabAction> {
    let avail = ui.available_size();
    let side = avail.x.min(avail.y).max(120.0);
    let (outer, _) = ui.allocate_exact_size(vec2(avail.x, side), Sense::hover());
    let rect = Rect::from_center_size(outer.center(), vec2(side, side));
    let resp = ui.interact(
        rect,
        ui.scope_id().with("lab-canvas"),
        Sense::click_and_drag(),
    );
    let t = Transform {
        rect,
        bounds: lab.prefs.bounds,
    };
    lab.canvas.rect = Some(rect);
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_rgb(252, 252, 255));
    if let Some(tex) = &lab.density_tex {
        let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
        painter.image(tex.id(), rect, uv, Color32::WHITE);
    }
    paint_axes(&painter, &t);
    paint_measure(&painter, &t, &lab.prefs.scene);
    paint_components(&painter, &t, &lab.prefs.scene.components);
    if let Some(p) = lab.picture.as_ref().filter(|_| lab.prefs.reference) {
        let mut mesh = egui::Mesh::default();
        for q in &p.reference {
            let s = t.to_screen([f64::from(q[0]), f64::from(q[1])]);
            mesh.add_colored_rect(Rect::from_center_size(s, vec2(2.0, 2.0)), REFERENCE);
        }
        painter.add(Shape::mesh(mesh));
    }
    lab.canvas.drawn_step = None;
    if let (Some(run), Some(frame)) = (lab.run.as_ref(), lab.shown()) {
        let colour = if run.stale { PARTICLE_STALE } else { PARTICLE };
        if lab.prefs.trails {
            let k = lab.playback.pos.max(0.0) as usize;
            paint_trails(&painter, &t, &run.frames, k, lab.prefs.show_x0);
        }
        paint_particles(&painter, &t, frame, lab.prefs.show_x0, colour);
        lab.canvas.drawn_step = Some(frame.step);
    }
    if let Some(p) = &lab.picture {
        paint_arrows(&painter, &t, p, lab.arrow_scale);
    }
    paint_legend(&painter, &t, lab);
    interact(ui, &resp, &t, lab)
}

fn paint_axes(painter: &egui::Painter, t: &Transform) {
    let [w, _] = t.bounds.size();
    let step = if w > 16.0 {
        5.0
    } else if w > 6.0 {
        1.0
    } else {
        0.5
    };
    let grid = Stroke::new(0.5, Color32::from_black_alpha(25));
    let axis = Stroke::new(1.0, Color32::from_black_alpha(70));
    let font = egui::FontId::proportional(10.0);
    let mut v = (t.bounds.min[0] / step).ceil() * step;
    while v <= t.bounds.max[0] {
        let s = t.to_screen([v, 0.0]);
        let stroke = if v.abs() < 1e-9 { axis } else { grid };
        painter.vline(s.x, t.rect.y_range(), stroke);
        painter.text(
            pos2(s.x + 2.0, t.rect.max.y - 2.0),
            egui::Align2::LEFT_BOTTOM,
            format!("{v}"),
            font.clone(),
            Color32::from_gray(110),
        );
        v += step;
    }
    let mut v = (t.bounds.min[1] / step).ceil() * step;
    while v <= t.bounds.max[1] {
        let s = t.to_screen([0.0, v]);
        let stroke = if v.abs() < 1e-9 { axis } else { grid };
        painter.hline(t.rect.x_range(), s.y, stroke);
        painter.text(
            pos2(t.rect.min.x + 2.0, s.y - 1.0),
            egui::Align2::LEFT_BOTTOM,
            format!("{v}"),
            font.clone(),
            Color32::from_gray(110),
        );
        v += step;
    }
}

/// The line a·x = c (a of any length) through the plot, and its ±2σ_y band.
fn paint_line(painter: &egui::Painter, t: &Transform, a: [f64; 2], c: f64, sigma_y: f64) {
    let n = a[0].hypot(a[1]);
    if !(n > 1e-12) {
        return;
    }
    let (u, c, band) = ([a[0] / n, a[1] / n], c / n, 2.0 * sigma_y / n);
    let tangent = [-u[1], u[0]];
    let reach = t.bounds.size()[0] * 3.0;
    let ends = |off: f64| {
        let foot = [u[0] * (c + off), u[1] * (c + off)];
        [
            t.to_screen([foot[0] - reach * tangent[0], foot[1] - reach * tangent[1]]),
            t.to_screen([foot[0] + reach * tangent[0], foot[1] + reach * tangent[1]]),
        ]
    };
    let [p0, p1] = ends(-band);
    let [q0, q1] = ends(band);
    painter.add(Shape::convex_polygon(
        vec![p0, p1, q1, q0],
        Color32::from_rgba_unmultiplied(20, 140, 70, 28),
        Stroke::NONE,
    ));
    painter.line_segment(ends(0.0), Stroke::new(1.5, MEASURE));
}

fn paint_measure(painter: &egui::Painter, t: &Transform, scene: &LabScene) {
    match &scene.measure {
        Measure::Line { angle, offset } => {
            paint_line(
                painter,
                t,
                [angle.cos(), angle.sin()],
                *offset,
                scene.sigma_y,
            );
            let [off, ang] = line_handles(*angle, *offset);
            painter.circle(
                t.to_screen(off),
                5.0,
                MEASURE,
                Stroke::new(1.0, Color32::WHITE),
            );
            painter.circle(
                t.to_screen(ang),
                5.0,
                Color32::WHITE,
                Stroke::new(2.0, MEASURE),
            );
        }
        Measure::Point { y } => {
            let r = 2.0 * scene.sigma_y as f32 * t.scale();
            let c = t.to_screen(*y);
            painter.circle(
                c,
                r,
                Color32::from_rgba_unmultiplied(20, 140, 70, 28),
                Stroke::new(1.5, MEASURE),
            );
            painter.circle_filled(c, 5.0, MEASURE);
        }
        Measure::Matrix { rows, y } => {
            for (a, c) in rows.iter().zip(y) {
                paint_line(painter, t, *a, *c, scene.sigma_y);
            }
        }
    }
}

/// Plane positions of the line's offset handle (the foot of the origin's perpendicular) and
/// angle handle (further along the line).
pub fn line_handles(angle: f64, offset: f64) -> [[f64; 2]; 2] {
    let u = [angle.cos(), angle.sin()];
    let foot = [u[0] * offset, u[1] * offset];
    [foot, [foot[0] - 1.5 * u[1], foot[1] + 1.5 * u[0]]]
}

/// The spread handle: two standard deviations along the major axis.
pub fn spread_handle(c: &Component) -> [f64; 2] {
    let (len, dir) = c.axes()[0];
    [
        c.mean[0] + 2.0 * len * dir[0],
        c.mean[1] + 2.0 * len * dir[1],
    ]
}

fn paint_components(painter: &egui::Painter, t: &Transform, comps: &[Component]) {
    let total: f64 = comps.iter().map(|c| c.weight).sum();
    for c in comps {
        let [(l1, d1), (l2, d2)] = c.axes();
        for k in [1.0, 2.0] {
            let pts: Vec<Pos2> = (0..48)
                .map(|i| {
                    let a = std::f64::consts::TAU * i as f64 / 48.0;
                    let (s, co) = a.sin_cos();
                    t.to_screen([
                        c.mean[0] + k * (l1 * co * d1[0] + l2 * s * d2[0]),
                        c.mean[1] + k * (l1 * co * d1[1] + l2 * s * d2[1]),
                    ])
                })
                .collect();
            painter.add(Shape::closed_line(
                pts,
                Stroke::new(
                    if k == 1.0 { 1.0 } else { 0.6 },
                    COMPONENT.gamma_multiply(0.6),
                ),
            ));
        }
        // The mean's dot grows with the weight.
        let r = 3.0 + 5.0 * (c.weight / total).sqrt() as f32;
        painter.circle(
            t.to_screen(c.mean),
            r,
            COMPONENT,
            Stroke::new(1.0, Color32::WHITE),
        );
        let h = t.to_screen(spread_handle(c));
        painter.rect_stroke(
            Rect::from_center_size(h, vec2(7.0, 7.0)),
            0.0,
            Stroke::new(1.2, COMPONENT),
            egui::StrokeKind::Middle,
        );
    }
}

fn point_of(frame: &Frame, i: usize, x0: bool) -> [f64; 2] {
    let p = if x0 { frame.x0[i] } else { frame.x[i] };
    [f64::from(p[0]), f64::from(p[1])]
}

fn paint_particles(painter: &egui::Painter, t: &Transform, f: &Frame, x0: bool, c: Color32) {
    let mut mesh = egui::Mesh::default();
    let visible = t.rect.expand(4.0);
    for i in 0..f.x.len() {
        let s = t.to_screen(point_of(f, i, x0));
        if visible.contains(s) {
            mesh.add_colored_rect(Rect::from_center_size(s, vec2(3.5, 3.5)), c);
        }
    }
    painter.add(Shape::mesh(mesh));
}

/// The last few steps of the first particles, fading.
fn paint_trails(
    painter: &egui::Painter,
    t: &Transform,
    frames: &[std::sync::Arc<Frame>],
    k: usize,
    x0: bool,
) {
    const LENGTH: usize = 12;
    const SHOWN: usize = 300;
    let k = k.min(frames.len().saturating_sub(1));
    let from = k.saturating_sub(LENGTH);
    let n = frames.get(k).map_or(0, |f| f.x.len()).min(SHOWN);
    for i in 0..n {
        let pts: Vec<Pos2> = frames[from..=k]
            .iter()
            .map(|f| t.to_screen(point_of(f, i, x0)))
            .collect();
        painter.add(Shape::line(
            pts,
            Stroke::new(0.7, PARTICLE.gamma_multiply(0.35)),
        ));
    }
}

fn paint_arrows(painter: &egui::Painter, t: &Transform, p: &Picture, scale: f64) {
    let n = (p.points.len() as f64).sqrt().max(1.0);
    let cell = t.rect.width() / n as f32;
    for (field, vectors) in &p.fields {
        let stroke = Stroke::new(1.3, field_color(*field));
        for (q, v) in p.points.iter().zip(vectors) {
            let norm = v[0].hypot(v[1]);
            if !(norm > 0.0 && norm.is_finite()) {
                continue;
            }
            let len = (norm / scale).min(1.0) as f32 * 0.9 * cell;
            let dir = vec2(v[0] as f32, -v[1] as f32) / norm as f32;
            let tail = t.to_screen(*q);
            let tip = tail + dir * len;
            painter.line_segment([tail, tip], stroke);
            let head = 0.3 * len.min(8.0);
            let side = vec2(-dir.y, dir.x);
            painter.line_segment([tip, tip - dir * head + side * head * 0.6], stroke);
            painter.line_segment([tip, tip - dir * head - side * head * 0.6], stroke);
        }
    }
}

fn paint_legend(painter: &egui::Painter, t: &Transform, lab: &Lab) {
    let font = egui::FontId::proportional(12.0);
    let mut y = t.rect.min.y + 6.0;
    let mut line = |text: String, colour: Color32| {
        painter.text(
            pos2(t.rect.min.x + 26.0, y),
            egui::Align2::LEFT_TOP,
            text,
            font.clone(),
            colour,
        );
        y += 15.0;
    };
    let sigma = lab.sigma();
    let density = lab.prefs.density;
    if density != crate::lab::Density::None {
        let noised = if lab.prefs.noised {
            format!(", noised at σ = {sigma:.3}")
        } else {
            String::new()
        };
        line(
            format!("shade: {}{noised}", density.label()),
            Color32::from_rgb(25, 70, 160),
        );
    }
    if let Some(p) = &lab.picture {
        for (f, _) in &p.fields {
            line(
                format!("arrows: {} at σ = {sigma:.3}", f.label()),
                field_color(*f),
            );
        }
    }
    if let Some(e) = &lab.picture_error {
        line(e.clone(), Color32::from_rgb(200, 30, 30));
    }
}

/// The handle under `s`, if any (measurement handles first: they sit on top).
fn pick(t: &Transform, scene: &LabScene, s: Pos2) -> Option<Handle> {
    let near = |p: [f64; 2]| t.to_screen(p).distance(s) <= PICK;
    match &scene.measure {
        Measure::Line { angle, offset } => {
            let [off, ang] = line_handles(*angle, *offset);
            if near(ang) {
                return Some(Handle::LineAngle);
            }
            if near(off) {
                return Some(Handle::LineOffset);
            }
        }
        Measure::Point { y } if near(*y) => return Some(Handle::Point),
        _ => {}
    }
    let comps = &scene.components;
    (0..comps.len()).rev().find_map(|k| {
        if near(comps[k].mean) {
            Some(Handle::Mean(k))
        } else if near(spread_handle(&comps[k])) {
            Some(Handle::Spread(k))
        } else {
            None
        }
    })
}

/// The scene with `handle` dragged to plane point `p` (from the scene at the drag's start).
pub fn drag_to(start: &LabScene, handle: Handle, p: [f64; 2]) -> LabScene {
    let mut s = start.clone();
    match handle {
        Handle::Mean(k) => {
            if let Some(c) = s.components.get_mut(k) {
                c.mean = p;
            }
        }
        Handle::Spread(k) => {
            if let Some(c) = s.components.get_mut(k) {
                let (len, _) = c.axes()[0];
                let d = (p[0] - c.mean[0]).hypot(p[1] - c.mean[1]).max(0.02);
                *c = c.scaled((d / (2.0 * len)).powi(2));
            }
        }
        Handle::LineOffset => {
            if let Measure::Line { angle, offset } = &mut s.measure {
                *offset = angle.cos() * p[0] + angle.sin() * p[1];
            }
        }
        Handle::LineAngle => {
            if let Measure::Line { angle, offset } = &mut s.measure {
                let [foot, _] = line_handles(*angle, *offset);
                let (dx, dy) = (p[0] - foot[0], p[1] - foot[1]);
                if dx.hypot(dy) > 1e-6 {
                    // The line runs along (dx, dy); its normal a = (dy, −dx)/|·| keeps the
                    // handle on the tangent side (−a₂, a₁).
                    let new = (-dx).atan2(dy);
                    let a = [new.cos(), new.sin()];
                    *angle = new;
                    *offset = a[0] * foot[0] + a[1] * foot[1];
                }
            }
        }
        Handle::Point => {
            if let Measure::Point { y } = &mut s.measure {
                *y = p;
            }
        }
    }
    s
}

fn interact(ui: &egui::Ui, resp: &egui::Response, t: &Transform, lab: &mut Lab) -> Vec<LabAction> {
    let mut out = vec![];
    let scene = &lab.prefs.scene;
    let hover = resp.hover_pos().and_then(|s| pick(t, scene, s));
    if hover.is_some() || lab.canvas.drag.as_ref().is_some_and(|d| d.handle.is_some()) {
        ui.ctx().set_cursor_icon(egui::CursorIcon::Grab);
    }
    if resp.drag_started_by(egui::PointerButton::Primary) {
        let origin = ui.input(|i| i.pointer.press_origin()).or(resp.hover_pos());
        lab.canvas.drag = Some(Drag {
            handle: origin.and_then(|s| pick(t, scene, s)),
            start: scene.clone(),
        });
    }
    let drag = lab.canvas.drag.clone();
    if let (Some(d), Some(pos)) = (&drag, resp.interact_pointer_pos()) {
        match d.handle {
            Some(h) if resp.dragged() || resp.drag_stopped() => out.push(LabAction::Edit {
                scene: drag_to(&d.start, h, t.to_plane(pos)),
                done: resp.drag_stopped(),
            }),
            None if resp.dragged() => {
                // Pan: the plane point under the pointer follows it.
                let dv = resp.drag_delta() / t.scale();
                let b = &mut lab.prefs.bounds;
                for (k, d) in [f64::from(-dv.x), f64::from(dv.y)].into_iter().enumerate() {
                    b.min[k] += d;
                    b.max[k] += d;
                }
            }
            _ => {}
        }
    }
    if resp.drag_stopped() {
        lab.canvas.drag = None;
    }
    if resp.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0
            && let Some(s) = resp.hover_pos()
        {
            let factor = (-f64::from(scroll) * 0.002).exp();
            match hover {
                Some(Handle::Mean(k) | Handle::Spread(k)) => {
                    let mut edited = scene.clone();
                    edited.components[k] = edited.components[k].scaled(factor.powi(2));
                    out.push(LabAction::Edit {
                        scene: edited,
                        done: true,
                    });
                }
                _ => zoom(&mut lab.prefs.bounds, t.to_plane(s), factor),
            }
        }
    }
    if resp.double_clicked()
        && hover.is_none()
        && let Some(s) = resp.interact_pointer_pos()
        && scene.components.len() < crate::lab::scene::MAX_COMPONENTS
    {
        let mut edited = scene.clone();
        let w = scene.components.iter().map(|c| c.weight).sum::<f64>()
            / scene.components.len().max(1) as f64;
        edited
            .components
            .push(Component::isotropic(w, t.to_plane(s), 0.3));
        out.push(LabAction::Edit {
            scene: edited,
            done: true,
        });
    }
    if resp.secondary_clicked() {
        lab.canvas.menu_for = match hover {
            Some(Handle::Mean(k) | Handle::Spread(k)) => Some(k),
            _ => None,
        };
    }
    resp.context_menu(|ui| {
        let scene = &lab.prefs.scene;
        match lab.canvas.menu_for {
            Some(k) if k < scene.components.len() && scene.components.len() > 1 => {
                if ui.button(format!("Remove component {}", k + 1)).clicked() {
                    let mut edited = scene.clone();
                    edited.components.remove(k);
                    out.push(LabAction::Edit {
                        scene: edited,
                        done: true,
                    });
                    ui.close();
                }
            }
            _ => {
                ui.label("Right-click a mean to remove it; double-click to add one.");
            }
        }
        if ui.button("Reset view").clicked() {
            lab.prefs.bounds = Bounds::default();
            ui.close();
        }
    });
    out
}

/// Zooms the square bounds by `factor` about plane point `p` (which stays put).
fn zoom(b: &mut Bounds, p: [f64; 2], factor: f64) {
    let w = b.size()[0] * factor;
    if !(0.2..=200.0).contains(&w) {
        return;
    }
    for k in 0..2 {
        b.min[k] = p[k] + (b.min[k] - p[k]) * factor;
        b.max[k] = p[k] + (b.max[k] - p[k]) * factor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dragging_the_angle_handle_turns_the_line_about_its_foot() {
        let scene = crate::lab::examples::ring();
        let Measure::Line { angle, offset } = scene.measure else {
            panic!("the ring is observed through a line");
        };
        let [foot, handle] = line_handles(angle, offset);
        // Dragging the handle to where it already is changes nothing.
        let same = drag_to(&scene, Handle::LineAngle, handle);
        let Measure::Line {
            angle: a2,
            offset: o2,
        } = same.measure
        else {
            panic!()
        };
        assert!((a2.cos() - angle.cos()).abs() < 1e-9 && (a2.sin() - angle.sin()).abs() < 1e-9);
        assert!((o2 - offset).abs() < 1e-9);
        // Dragging it to foot + (1, 0): the line is horizontal through the foot (x₂ observed).
        let turned = drag_to(&scene, Handle::LineAngle, [foot[0] + 1.0, foot[1]]);
        let Measure::Line {
            angle: a3,
            offset: o3,
        } = turned.measure
        else {
            panic!()
        };
        let a = [a3.cos(), a3.sin()];
        assert!(a[0].abs() < 1e-9 && (a[0] * foot[0] + a[1] * foot[1] - o3).abs() < 1e-9);
        let [foot3, _] = line_handles(a3, o3);
        assert!((a[0] * foot3[0] + a[1] * foot3[1] - o3).abs() < 1e-9);
    }

    #[test]
    fn the_screen_transform_round_trips() {
        let t = Transform {
            rect: Rect::from_min_size(pos2(10.0, 20.0), vec2(300.0, 300.0)),
            bounds: Bounds::default(),
        };
        for p in [[0.0, 0.0], [1.5, -2.0], [-3.0, 3.0]] {
            let q = t.to_plane(t.to_screen(p));
            assert!((q[0] - p[0]).abs() < 1e-4 && (q[1] - p[1]).abs() < 1e-4);
        }
        // y up: a higher plane point is higher on the screen.
        assert!(t.to_screen([0.0, 1.0]).y < t.to_screen([0.0, 0.0]).y);
    }
}
