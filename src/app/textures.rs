//! Textures of what the views show: the run's (from its newest frame) and the preview's (from
//! the current choices). Rebuilt only when their source changes, never per frame.

use super::preview::Measurement;
use super::views::{self, Tex};
use crate::engine::Snapshot;

/// The run's pictures.
#[derive(Default)]
pub struct RunTextures {
    pub truth: Tex,
    pub y: Tex,
    pub mean: Tex,
    pub spread: Tex,
    pub chains: Vec<Tex>,
    /// The value the top of the spread's scale means.
    pub spread_top: f32,
    /// Which frame they show: (run id, step, NFE, x0-hat, std).
    key: Option<(u64, usize, usize, bool, bool)>,
}

impl RunTextures {
    pub fn update(&mut self, ctx: &egui::Context, snap: &Snapshot, show_x0: bool, show_std: bool) {
        if snap.shape.contains(&0) {
            return;
        }
        let key = (snap.run_id, snap.step, snap.nfe, show_x0, show_std);
        if self.key == Some(key) {
            return;
        }
        let same_run = self.key.is_some_and(|k| k.0 == snap.run_id);
        self.key = Some(key);
        let shape = snap.shape;
        let d: usize = shape.iter().product();
        if let Some(inputs) = snap.inputs.as_ref().filter(|_| !same_run) {
            match &inputs.truth {
                Some(t) => self
                    .truth
                    .set(ctx, "run-truth", views::to_color_image(t, shape)),
                None => self.truth.clear(),
            }
            self.y.set(
                ctx,
                "run-y",
                views::measurement_image(&inputs.y_view, &inputs.seen, shape),
            );
        }
        self.mean
            .set(ctx, "mean", views::to_color_image(&snap.mean, shape));
        let (img, top) = views::spread_image(&snap.variance, shape, show_std);
        self.spread.set(ctx, "spread", img);
        self.spread_top = top;
        let src = if show_x0 { &snap.x0_hat } else { &snap.x };
        let n = src.len() / d.max(1);
        self.chains.resize_with(n, Tex::default);
        for (k, tex) in self.chains.iter_mut().enumerate() {
            tex.set(
                ctx,
                &format!("chain-{k}"),
                views::to_color_image(&src[k * d..(k + 1) * d], shape),
            );
        }
    }
}

/// The current choices' pictures: the working image and the y the next run will restore.
#[derive(Default)]
pub struct PreviewTextures {
    pub truth: Tex,
    pub y: Tex,
}

impl PreviewTextures {
    pub fn set_truth(&mut self, ctx: &egui::Context, data: &[f32], shape: [usize; 3]) {
        self.truth
            .set(ctx, "truth", views::to_color_image(data, shape));
    }

    pub fn set_y(&mut self, ctx: &egui::Context, m: &Measurement) {
        self.y.set(
            ctx,
            "y-preview",
            views::measurement_image(&m.y_view, &m.seen, m.shape),
        );
    }
}
