//! The lab's plot of the plane: the density, the measurement, the prior's components with their
//! handles, the exact cloud, the particles and the arrows, drawn in one square with shared zoom
//! and pan. Dragging a mean moves it, dragging the ring handle changes its spread (so does the
//! wheel over a mean), a double click adds a component, the context menu of a mean removes it;
//! the measurement line has an offset and an angle handle. Edits come back as actions.

use super::paint::*;
use super::{Lab, LabAction};
use crate::lab::picture::Bounds;
use crate::lab::{Component, LabScene, Measure};
use egui::{Color32, Pos2, Rect, Sense, Shape, pos2, vec2};

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
