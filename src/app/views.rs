//! Image views: tensors → textures, one shared zoom/pan window over all views, colormaps.

use crate::image_io::{diverging, viridis};
use egui::{Color32, ColorImage, Rect, Sense, TextureHandle, TextureOptions, Vec2, pos2, vec2};

/// The part of the image every view shows: zoom ≥ 1 and the centre in UV coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewWindow {
    pub zoom: f32,
    pub center: [f32; 2],
}

impl Default for ViewWindow {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            center: [0.5, 0.5],
        }
    }
}

impl ViewWindow {
    /// The zoom at which one picture pixel is one screen pixel in `view` (`pixels_per_point`
    /// screen pixels per point), centred where the view is now; 1 (the whole picture) when the
    /// picture is smaller than the view.
    pub fn one_to_one(&mut self, view: &ImageTransform, pixels_per_point: f32) {
        // At zoom 1 the whole picture fills `inner` (letterboxed), whatever the zoom now.
        let fit_width = view.inner.width() * pixels_per_point;
        self.zoom = (view.size[0] as f32 / fit_width.max(1.0)).clamp(1.0, 32.0);
    }

    pub fn uv(&self) -> Rect {
        let half = 0.5 / self.zoom;
        let c = [
            self.center[0].clamp(half, 1.0 - half),
            self.center[1].clamp(half, 1.0 - half),
        ];
        Rect::from_min_max(
            pos2(c[0] - half, c[1] - half),
            pos2(c[0] + half, c[1] + half),
        )
    }

    /// Scroll to zoom about the pointer, secondary/middle drag (or plain drag when not
    /// painting) to pan; shared by every view so they stay in sync. `view` is where the picture
    /// is drawn (letterbox included).
    pub fn interact(
        &mut self,
        view: &ImageTransform,
        resp: &egui::Response,
        pan_with_primary: bool,
    ) {
        let ctx = &resp.ctx;
        if resp.hovered() {
            let scroll = ctx.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0
                && let Some(p) = resp.hover_pos()
            {
                // Keep the picture point under the pointer fixed.
                let [u, v] = view.uv_from_ui(p);
                let [fx, fy] = view.fraction(p);
                self.zoom = (self.zoom * (1.0 + scroll * 0.002)).clamp(1.0, 32.0);
                let half = 0.5 / self.zoom;
                self.center = [u - (fx - 0.5) * 2.0 * half, v - (fy - 0.5) * 2.0 * half];
            }
        }
        let pan = resp.dragged_by(egui::PointerButton::Secondary)
            || resp.dragged_by(egui::PointerButton::Middle)
            || (pan_with_primary && resp.dragged_by(egui::PointerButton::Primary));
        if pan {
            let d = resp.drag_delta();
            let uv = self.uv();
            self.center[0] -= d.x / view.inner.width() * uv.width();
            self.center[1] -= d.y / view.inner.height() * uv.height();
        }
        let half = 0.5 / self.zoom;
        self.center = [
            self.center[0].clamp(half, 1.0 - half),
            self.center[1].clamp(half, 1.0 - half),
        ];
    }
}

/// Where a picture of `size` (W×H) is drawn inside a view: the letterboxed rectangle `inner`
/// and the shown part `uv` of the picture. The one mapping between screen and picture, used by
/// the brush, the zoom and the pan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageTransform {
    pub inner: Rect,
    pub uv: Rect,
    /// Picture size in pixels, [W, H].
    pub size: [usize; 2],
}

impl ImageTransform {
    /// The largest rectangle of the picture's aspect ratio centred in `outer`.
    pub fn fit(outer: Rect, size: [usize; 2], uv: Rect) -> Self {
        let aspect = size[0].max(1) as f32 / size[1].max(1) as f32;
        let inner = if aspect >= outer.width() / outer.height() {
            Rect::from_center_size(outer.center(), vec2(outer.width(), outer.width() / aspect))
        } else {
            Rect::from_center_size(
                outer.center(),
                vec2(outer.height() * aspect, outer.height()),
            )
        };
        Self { inner, uv, size }
    }

    /// Position inside `inner` as fractions [0, 1]².
    fn fraction(&self, pos: egui::Pos2) -> [f32; 2] {
        [
            (pos.x - self.inner.min.x) / self.inner.width(),
            (pos.y - self.inner.min.y) / self.inner.height(),
        ]
    }

    fn uv_from_ui(&self, pos: egui::Pos2) -> [f32; 2] {
        let [fx, fy] = self.fraction(pos);
        [
            self.uv.min.x + fx * self.uv.width(),
            self.uv.min.y + fy * self.uv.height(),
        ]
    }

    /// Screen position → picture pixel coordinates (x, y), continuous (pixel k spans [k, k+1)).
    pub fn image_from_ui(&self, pos: egui::Pos2) -> [f32; 2] {
        let [u, v] = self.uv_from_ui(pos);
        [u * self.size[0] as f32, v * self.size[1] as f32]
    }

    /// Screen pixels per picture pixel.
    pub fn scale(&self) -> f32 {
        self.inner.width() / (self.uv.width() * self.size[0] as f32)
    }
}

/// [C, H, W] values in [-1, 1] → an sRGB image (grey when C = 1), quantised exactly like the
/// PNGs the command line writes.
pub fn to_color_image(data: &[f32], shape: [usize; 3]) -> ColorImage {
    let [_, h, w] = shape;
    ColorImage::from_rgb([w, h], crate::image_io::to_rgb(data, shape).as_raw())
}

/// y with the pixels the operator does not see drawn as a dark checkerboard.
pub fn measurement_image(y: &[f32], seen: &[bool], shape: [usize; 3]) -> ColorImage {
    let [_, h, w] = shape;
    let mut img = to_color_image(y, shape);
    for i in 0..h * w {
        if !seen.get(i).copied().unwrap_or(true) {
            let (x, yy) = (i % w, i / w);
            let dark = if (x + yy) % 2 == 0 { 40 } else { 70 };
            img.pixels[i] = Color32::from_rgb(dark, dark / 2, dark / 2);
        }
    }
    img
}

/// Per-pixel standard deviation (or variance), averaged over channels, on viridis; returns the
/// image and the value the top of the scale means.
/// The spread per pixel (the mean over channels) on viridis: the chains' variance, or the
/// calibrated one (`calibration` and the chains' count), as std or variance.
pub fn spread_image(
    var: &[f32],
    shape: [usize; 3],
    std: bool,
    calibration: Option<(&crate::calibration::SpreadCalibration, usize)>,
) -> (ColorImage, f32) {
    let [_, h, w] = shape;
    let mut vals = match calibration {
        Some((cal, chains)) => {
            let widened: Vec<f32> = var.iter().map(|v| cal.variance(*v, chains)).collect();
            channel_mean(&widened, shape)
        }
        None => channel_mean(var, shape),
    };
    if std {
        vals.iter_mut().for_each(|v| *v = v.max(0.0).sqrt());
    }
    viridis_image(&vals, [w, h])
}

/// The mean over channels of a [C, H, W] buffer: one value per pixel.
pub fn channel_mean(data: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let [c, h, w] = shape;
    (0..h * w)
        .map(|i| (0..c).map(|ch| data[ch * h * w + i]).sum::<f32>() / c.max(1) as f32)
        .collect()
}

/// Non-negative per-pixel values on viridis, scaled to their maximum; returns the image and
/// the value the top of the scale means.
pub fn viridis_image(vals: &[f32], size: [usize; 2]) -> (ColorImage, f32) {
    let top = vals.iter().cloned().fold(0.0f32, f32::max).max(1e-6);
    let px = vals
        .iter()
        .map(|v| {
            let [r, g, b] = viridis(v / top);
            Color32::from_rgb(r, g, b)
        })
        .collect();
    (ColorImage::new(size, px), top)
}

/// Signed per-pixel values on the blue–white–red map, symmetric about 0; returns the image and
/// the magnitude the ends of the scale mean.
pub fn diverging_image(vals: &[f32], size: [usize; 2]) -> (ColorImage, f32) {
    let top = vals.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let px = vals
        .iter()
        .map(|v| {
            let [r, g, b] = diverging(v / top);
            Color32::from_rgb(r, g, b)
        })
        .collect();
    (ColorImage::new(size, px), top)
}

/// The truth in dim grey with the pixels flagged in `mark` (any channel) in red.
pub fn marked_image(truth: &[f32], mark: &[bool], shape: [usize; 3]) -> ColorImage {
    let [_, h, w] = shape;
    let grey = channel_mean(truth, shape);
    let px = (0..h * w)
        .map(|i| {
            let hit = mark.iter().skip(i).step_by(h * w).any(|m| *m);
            if hit {
                Color32::from_rgb(230, 40, 40)
            } else {
                let v = (40.0 + 60.0 * (grey[i].clamp(-1.0, 1.0) + 1.0)) as u8;
                Color32::from_gray(v)
            }
        })
        .collect();
    ColorImage::new([w, h], px)
}

/// A texture slot that is created once and updated in place.
#[derive(Default)]
pub struct Tex(Option<TextureHandle>);

impl Tex {
    pub fn set(&mut self, ctx: &egui::Context, name: &str, img: ColorImage) {
        match &mut self.0 {
            Some(t) if t.size() == img.size => t.set(img, TextureOptions::NEAREST),
            _ => self.0 = Some(ctx.load_texture(name, img, TextureOptions::NEAREST)),
        }
    }
    pub fn clear(&mut self) {
        self.0 = None;
    }
    pub fn get(&self) -> Option<&TextureHandle> {
        self.0.as_ref()
    }
}

/// Draws a texture letterboxed in `outer` through the shared window; returns the transform (or
/// None when there is no texture yet). `tint` dims results that no longer match the choices.
pub fn paint_image(
    painter: &egui::Painter,
    outer: Rect,
    tex: &Tex,
    window: &ViewWindow,
    tint: Color32,
) -> Option<ImageTransform> {
    painter.rect_filled(outer, 2.0, Color32::from_gray(30));
    match tex.get() {
        Some(t) => {
            let view = ImageTransform::fit(outer, t.size(), window.uv());
            painter.image(t.id(), view.inner, view.uv, tint);
            Some(view)
        }
        None => {
            painter.text(
                outer.center(),
                egui::Align2::CENTER_CENTER,
                "—",
                egui::FontId::proportional(14.0),
                Color32::GRAY,
            );
            None
        }
    }
}

/// One titled view of `side` pixels: its response (labelled `title` for accessibility and
/// tests) and where the picture went.
pub fn image_view(
    ui: &mut egui::Ui,
    title: &str,
    tex: &Tex,
    window: &ViewWindow,
    side: f32,
    tint: Color32,
) -> (egui::Response, Option<ImageTransform>) {
    image_view_sized(ui, title, tex, window, vec2(side, side), tint)
}

/// As [`image_view`], in a view of any size (one view filling the central area).
pub fn image_view_sized(
    ui: &mut egui::Ui,
    title: &str,
    tex: &Tex,
    window: &ViewWindow,
    size: Vec2,
    tint: Color32,
) -> (egui::Response, Option<ImageTransform>) {
    ui.vertical(|ui| {
        ui.label(egui::RichText::new(title).strong());
        let (rect, resp) = ui.allocate_exact_size(size, Sense::click_and_drag());
        // Labelled for accessibility (and tests): "<title> picture".
        let label = format!("{title} picture");
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
        let view = paint_image(&ui.painter_at(rect), rect, tex, window, tint);
        (resp, view)
    })
    .inner
}

/// A vertical viridis colour bar with its scale.
pub fn colorbar(ui: &mut egui::Ui, top: f32, height: f32, label: &str) {
    ui.vertical(|ui| {
        ui.label(egui::RichText::new(label).small());
        gradient_strip(ui, height, viridis);
        ui.label(egui::RichText::new(format!("{top:.3}")).small());
        ui.label(egui::RichText::new("0").small());
    });
}

/// A vertical blue–white–red colour bar from −top to +top.
pub fn diverging_colorbar(ui: &mut egui::Ui, top: f32, height: f32, label: &str) {
    ui.vertical(|ui| {
        ui.label(egui::RichText::new(label).small());
        ui.label(egui::RichText::new(format!("+{top:.3}")).small());
        gradient_strip(ui, height, |u| diverging(2.0 * u - 1.0));
        ui.label(egui::RichText::new(format!("-{top:.3}")).small());
    });
}

/// A 14-pixel-wide strip of `color(u)`, u from 1 at the top to 0 at the bottom.
fn gradient_strip(ui: &mut egui::Ui, height: f32, color: impl Fn(f32) -> [u8; 3]) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(14.0, height), Sense::hover());
    let p = ui.painter_at(rect);
    let n = 32;
    for k in 0..n {
        let [r, g, b] = color(1.0 - k as f32 / (n - 1) as f32);
        let y0 = rect.min.y + rect.height() * k as f32 / n as f32;
        let y1 = rect.min.y + rect.height() * (k + 1) as f32 / n as f32;
        p.rect_filled(
            Rect::from_min_max(pos2(rect.min.x, y0), pos2(rect.max.x, y1 + 0.5)),
            0.0,
            Color32::from_rgb(r, g, b),
        );
    }
}

#[cfg(test)]
mod one_to_one_tests {
    use super::*;

    /// A 2560-pixel-wide photo drawn 1000 points wide at 1 or 2 screen pixels per point: 1:1
    /// shows 1000 (or 2000) of its pixels across; a picture smaller than the view stays whole.
    #[test]
    fn one_to_one_shows_one_picture_pixel_per_screen_pixel() {
        let outer = Rect::from_min_size(pos2(0.0, 0.0), vec2(1000.0, 800.0));
        let mut w = ViewWindow::default();
        let t = ImageTransform::fit(outer, [2560, 1440], w.uv());
        w.one_to_one(&t, 1.0);
        assert!((w.zoom - 2.56).abs() < 1e-4, "{}", w.zoom);
        let zoomed = ImageTransform::fit(outer, [2560, 1440], w.uv());
        let shown = zoomed.uv.width() * 2560.0;
        assert!((shown - zoomed.inner.width()).abs() < 0.5, "{shown}");
        w.one_to_one(&zoomed, 2.0);
        assert!((w.zoom - 1.28).abs() < 1e-4, "{}", w.zoom);
        let small = ImageTransform::fit(outer, [64, 64], w.uv());
        w.one_to_one(&small, 1.0);
        assert_eq!(w.zoom, 1.0);
    }
}
