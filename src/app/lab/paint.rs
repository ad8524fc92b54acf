//! Drawing the lab's plot: the density texture, axes, the measurement band and its handles, the
//! components' ellipses and handles, the exact cloud, particles with trails, and the arrows on one
//! shared length scale.

use super::Lab;
use super::canvas::Transform;
use crate::lab::picture::Picture;
use crate::lab::{Component, Field, Frame, LabScene, Measure};
use egui::{Color32, Pos2, Rect, Shape, Stroke, pos2, vec2};

pub const PARTICLE: Color32 = Color32::from_rgb(230, 110, 20);
pub const PARTICLE_STALE: Color32 = Color32::from_rgb(170, 150, 130);
pub const REFERENCE: Color32 = Color32::from_rgba_premultiplied(60, 60, 60, 70);
pub const COMPONENT: Color32 = Color32::from_rgb(40, 40, 40);
pub const MEASURE: Color32 = Color32::from_rgb(20, 140, 70);

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

pub fn paint_axes(painter: &egui::Painter, t: &Transform) {
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
pub fn paint_line(painter: &egui::Painter, t: &Transform, a: [f64; 2], c: f64, sigma_y: f64) {
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

pub fn paint_measure(painter: &egui::Painter, t: &Transform, scene: &LabScene) {
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

pub fn paint_components(painter: &egui::Painter, t: &Transform, comps: &[Component]) {
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

pub fn paint_particles(painter: &egui::Painter, t: &Transform, f: &Frame, x0: bool, c: Color32) {
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
pub fn paint_trails(
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

pub fn paint_arrows(painter: &egui::Painter, t: &Transform, p: &Picture, scale: f64) {
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

pub fn paint_legend(painter: &egui::Painter, t: &Transform, lab: &Lab) {
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
