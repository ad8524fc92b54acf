//! The inpainting mask: a base pattern (box, random pixels) plus brush strokes kept in image
//! coordinates (so zoom and pan never change what was painted), with undo/redo, clear and invert.

use crate::tensor;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// The base pattern under the strokes: a centred box and/or pixels dropped at random.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaskPattern {
    pub use_box: bool,
    /// Box side as a fraction of the image.
    pub box_fraction: f32,
    pub use_random: bool,
    /// Fraction of pixels kept at random (1 = none removed).
    pub keep_fraction: f32,
}

impl Default for MaskPattern {
    fn default() -> Self {
        Self {
            use_box: true,
            box_fraction: 0.4,
            use_random: false,
            keep_fraction: 0.5,
        }
    }
}

/// One brush stroke, in image pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub points: Vec<[f32; 2]>,
    pub radius: f32,
    /// Eraser strokes give pixels back to the observation.
    pub erase: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaskEditor {
    pub strokes: Vec<Stroke>,
    redo: Vec<Stroke>,
    /// Swap seen and missing after everything else.
    pub inverted: bool,
    /// Brush radius in image pixels.
    pub radius: f32,
    pub eraser: bool,
    /// The stroke being drawn (not yet on the undo stack).
    current: Option<Stroke>,
}

impl MaskEditor {
    pub fn new() -> Self {
        Self {
            radius: 2.0,
            ..Default::default()
        }
    }

    /// Begins or extends the stroke under the pointer (image coordinates).
    pub fn paint(&mut self, at: [f32; 2]) {
        let (radius, erase) = (self.radius, self.eraser);
        let stroke = self.current.get_or_insert_with(|| Stroke {
            points: vec![],
            radius,
            erase,
        });
        stroke.points.push(at);
    }

    /// Ends the stroke in progress; it becomes one undo step.
    pub fn end_stroke(&mut self) {
        if let Some(s) = self.current.take()
            && !s.points.is_empty()
        {
            self.strokes.push(s);
            self.redo.clear();
        }
    }

    /// Changes whenever the raster can change (for cheap change detection per frame).
    pub fn revision(&self) -> (usize, usize, usize, bool) {
        let painted: usize = self.strokes.iter().map(|s| s.points.len()).sum();
        let current = self.current.as_ref().map_or(0, |s| s.points.len());
        (self.strokes.len(), painted, current, self.inverted)
    }

    pub fn undo(&mut self) -> bool {
        match self.strokes.pop() {
            Some(s) => {
                self.redo.push(s);
                true
            }
            None => false,
        }
    }

    pub fn redo(&mut self) -> bool {
        match self.redo.pop() {
            Some(s) => {
                self.strokes.push(s);
                true
            }
            None => false,
        }
    }

    pub fn can_undo(&self) -> bool {
        !self.strokes.is_empty()
    }
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Removes every stroke (undoable as a whole: the strokes go to the redo stack).
    pub fn clear(&mut self) {
        while self.undo() {}
    }

    /// Seen (true) / missing (false) per pixel, row-major H×W; `seed` fixes the random pattern,
    /// so the same recipe gives the same mask.
    pub fn raster(&self, pattern: &MaskPattern, seed: u64, h: usize, w: usize) -> Vec<bool> {
        let mut seen = vec![true; h * w];
        if pattern.use_random {
            let mut rng = tensor::rng(seed ^ 0x5eed_u64);
            for s in seen.iter_mut() {
                *s = rng.random::<f32>() < pattern.keep_fraction;
            }
        }
        if pattern.use_box {
            let bh = ((h as f32 * pattern.box_fraction).round() as usize).min(h);
            let bw = ((w as f32 * pattern.box_fraction).round() as usize).min(w);
            let (y0, x0) = ((h - bh) / 2, (w - bw) / 2);
            for y in y0..y0 + bh {
                for x in x0..x0 + bw {
                    seen[y * w + x] = false;
                }
            }
        }
        for s in self.strokes.iter().chain(self.current.iter()) {
            stamp(&mut seen, h, w, s);
        }
        if self.inverted {
            for s in seen.iter_mut() {
                *s = !*s;
            }
        }
        seen
    }
}

/// Applies a stroke: discs of its radius along every segment.
fn stamp(seen: &mut [bool], h: usize, w: usize, s: &Stroke) {
    let mut dab = |c: [f32; 2]| {
        let r = s.radius.max(0.5);
        let (y0, y1) = (
            (c[1] - r).floor().max(0.0) as usize,
            (c[1] + r).ceil().max(0.0) as usize,
        );
        let (x0, x1) = (
            (c[0] - r).floor().max(0.0) as usize,
            (c[0] + r).ceil().max(0.0) as usize,
        );
        for y in y0..y1.min(h) {
            for x in x0..x1.min(w) {
                let (dx, dy) = (x as f32 + 0.5 - c[0], y as f32 + 0.5 - c[1]);
                if dx * dx + dy * dy <= r * r {
                    seen[y * w + x] = s.erase;
                }
            }
        }
    };
    let pts = &s.points;
    if let Some(first) = pts.first() {
        dab(*first);
    }
    for pair in pts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        let n = (len / 0.5).ceil().max(1.0) as usize;
        for i in 1..=n {
            let t = i as f32 / n as f32;
            dab([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> MaskPattern {
        MaskPattern {
            use_box: false,
            use_random: false,
            ..MaskPattern::default()
        }
    }

    #[test]
    fn stroke_undo_redo_invert() {
        let setup = plain();
        let mut m = MaskEditor::new();
        m.radius = 1.0;
        m.paint([2.5, 2.5]);
        m.paint([6.5, 2.5]);
        m.end_stroke();
        let r = m.raster(&setup, 0, 8, 8);
        let missing = r.iter().filter(|s| !**s).count();
        assert!(missing >= 5, "a horizontal stroke removes a line of pixels");
        assert!(!r[2 * 8 + 4] && r[6 * 8 + 4]);
        assert!(m.undo());
        assert!(m.raster(&setup, 0, 8, 8).iter().all(|s| *s));
        assert!(m.redo());
        assert_eq!(m.raster(&setup, 0, 8, 8), r);
        m.inverted = true;
        let inv = m.raster(&setup, 0, 8, 8);
        assert!(inv.iter().zip(&r).all(|(a, b)| a != b));
        m.clear();
        assert!(!m.can_undo() && m.can_redo());
    }

    #[test]
    fn eraser_restores_box_pixels() {
        let setup = MaskPattern {
            use_box: true,
            box_fraction: 0.5,
            use_random: false,
            ..MaskPattern::default()
        };
        let mut m = MaskEditor::new();
        let before = m.raster(&setup, 0, 8, 8);
        assert!(!before[4 * 8 + 4]);
        m.eraser = true;
        m.radius = 0.6;
        m.paint([4.5, 4.5]);
        m.end_stroke();
        assert!(m.raster(&setup, 0, 8, 8)[4 * 8 + 4]);
    }
}
