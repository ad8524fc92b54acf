//! Textures of what the views show: the run's (from its newest frame) and the preview's (from
//! the current choices). Rebuilt only when their source changes, never per frame.

use super::preview::Measurement;
use super::views::{self, Tex};
use crate::calibration::SpreadCalibration;
use crate::engine::{Snapshot, UncertaintyFrame};
use egui::ColorImage;

/// Which frame and view choices a set of pictures shows: (run id, step, NFE, x0-hat, std,
/// raw spread).
type RunKey = (u64, usize, usize, bool, bool, bool);

/// Pictures of a run's frame above this many values are made on a thread of their own: a
/// 4-megapixel frame's colour conversions took 0.25–2 s of a frame.
const OFF_THREAD_VALUES: usize = 1 << 20;

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
    /// Which frame they show.
    key: Option<RunKey>,
    /// The run whose inputs (truth, y) are shown or being made.
    inputs_run: Option<u64>,
    /// The calibration factor the spread is shown with (None: the chains' own spread).
    pub calibrated: Option<f64>,
    /// A large frame's pictures being made off the UI thread.
    making: Option<std::sync::mpsc::Receiver<RunPictures>>,
}

/// One frame's pictures as colour images, ready to upload.
struct RunPictures {
    key: RunKey,
    /// (truth, y) when the run is new.
    inputs: Option<(Option<ColorImage>, ColorImage)>,
    mean: ColorImage,
    spread: (ColorImage, f32),
    calibrated: Option<f64>,
    chains: Vec<ColorImage>,
}

impl RunPictures {
    fn make(snap: &Snapshot, key: RunKey, with_inputs: bool) -> Self {
        let (_, _, _, show_x0, show_std, raw_spread) = key;
        let shape = snap.shape;
        let d: usize = shape.iter().product();
        let inputs = (snap.inputs.as_ref().filter(|_| with_inputs)).map(|inputs| {
            (
                (inputs.truth.as_ref()).map(|t| views::to_color_image(t, shape)),
                views::measurement_image(&inputs.y_view, &inputs.seen, shape),
            )
        });
        let cal = (snap.inputs.as_ref())
            .and_then(|i| i.spread_calibration.as_ref())
            .filter(|_| !raw_spread);
        let spread = views::spread_image(
            &snap.variance,
            shape,
            show_std,
            cal.map(|c| (c, snap.chains)),
        );
        let src = if show_x0 { &snap.x0_hat } else { &snap.x };
        // x_t has standard deviation about √(1 + σ²): drawn as is it would be clipped to
        // salt-and-pepper for most of a run, so it is shown scaled back to the data's range.
        let scale = if show_x0 {
            1.0
        } else {
            (1.0 / (1.0 + snap.sigma * snap.sigma).sqrt()) as f32
        };
        let chains = (src.chunks(d.max(1)))
            .map(|chain| {
                if scale == 1.0 {
                    views::to_color_image(chain, shape)
                } else {
                    let scaled: Vec<f32> = chain.iter().map(|v| v * scale).collect();
                    views::to_color_image(&scaled, shape)
                }
            })
            .collect();
        Self {
            key,
            inputs,
            mean: views::to_color_image(&snap.mean, shape),
            spread,
            calibrated: cal.map(|c| c.factor),
            chains,
        }
    }
}

impl RunTextures {
    /// The run's pictures for this frame; `raw_spread` shows the chains' own spread even when
    /// the prior has a calibration for the run (the calibrated one otherwise). A large
    /// frame's pictures are made on a thread and shown when ready (the newest frame then).
    pub fn update(
        &mut self,
        ctx: &egui::Context,
        snap: &std::sync::Arc<Snapshot>,
        prefs: &super::toolbar::ViewPrefs,
    ) {
        if let Some(rx) = &self.making {
            match rx.try_recv() {
                Ok(pictures) => {
                    self.making = None;
                    self.show(ctx, pictures);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.making = None,
            }
        }
        if snap.shape.contains(&0) {
            return;
        }
        let key = (
            snap.run_id,
            snap.step,
            snap.nfe,
            prefs.show_x0,
            prefs.show_std,
            prefs.raw_spread,
        );
        if self.key == Some(key) {
            return;
        }
        let with_inputs = self.inputs_run != Some(snap.run_id);
        self.inputs_run = Some(snap.run_id);
        let values: usize = snap.shape.iter().product();
        if values <= OFF_THREAD_VALUES {
            self.show(ctx, RunPictures::make(snap, key, with_inputs));
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (job, wake) = (snap.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("posterior-lab-pictures".into())
            .spawn(move || {
                let _ = tx.send(RunPictures::make(&job, key, with_inputs));
                wake.request_repaint();
            });
        match spawned {
            Ok(_) => self.making = Some(rx),
            // No thread to be had: make them here rather than show nothing.
            Err(_) => self.show(ctx, RunPictures::make(snap, key, with_inputs)),
        }
    }

    fn show(&mut self, ctx: &egui::Context, p: RunPictures) {
        self.key = Some(p.key);
        if let Some((truth, y)) = p.inputs {
            match truth {
                Some(t) => self.truth.set(ctx, "run-truth", t),
                None => self.truth.clear(),
            }
            self.y.set(ctx, "run-y", y);
        }
        self.mean.set(ctx, "mean", p.mean);
        self.calibrated = p.calibrated;
        self.spread.set(ctx, "spread", p.spread.0);
        self.spread_top = p.spread.1;
        self.chains.resize_with(p.chains.len(), Tex::default);
        for (k, (tex, img)) in self.chains.iter_mut().zip(p.chains).enumerate() {
            tex.set(ctx, &format!("chain-{k}"), img);
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

/// The uncertainty view's pictures: principal directions, the picture moved along one, the
/// interval images and the calibration maps. Rebuilt when the engine sends new figures (or
/// the slider moves), never per frame.
#[derive(Default)]
pub struct UncertaintyTextures {
    pub components: Vec<Tex>,
    /// The magnitude the ends of each direction's colour scale mean.
    pub component_top: Vec<f32>,
    pub moved: Tex,
    pub lower: Tex,
    pub upper: Tex,
    /// Interval width (97.5% − 2.5%) or standard deviation, on viridis.
    pub spread: Tex,
    pub spread_top: f32,
    pub surprise: Tex,
    pub crps: Tex,
    pub crps_top: f32,
    /// The calibration factor the intervals are drawn with (None: the chains' own quantiles).
    pub calibrated: Option<f64>,
    /// (run id, step, width shown, calibrated) of the figures; (run, step, direction, t) of
    /// the moved one.
    key: Option<(u64, usize, bool, bool)>,
    moved_key: Option<(u64, usize, usize, i64)>,
}

impl UncertaintyTextures {
    pub fn update(
        &mut self,
        ctx: &egui::Context,
        snap: &Snapshot,
        u: &UncertaintyFrame,
        show_width: bool,
        raw_spread: bool,
    ) {
        let (run_id, shape) = (snap.run_id, snap.shape);
        let truth = snap.inputs.as_ref().and_then(|i| i.truth.as_deref());
        let cal: Option<(&SpreadCalibration, usize)> = (snap.inputs.as_ref())
            .and_then(|i| i.spread_calibration.as_ref())
            .filter(|_| !raw_spread)
            .map(|c| (c, snap.chains));
        let key = (run_id, u.step, show_width, cal.is_some());
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        self.calibrated = cal.map(|(c, _)| c.factor);
        let [_, h, w] = shape;
        let d: usize = shape.iter().product();
        let k = u.pca.k();
        self.components.resize_with(k, Tex::default);
        self.component_top.resize(k, 0.0);
        for i in 0..k {
            let vals = views::channel_mean(u.pca.component(i), shape);
            let (img, top) = views::diverging_image(&vals, [w, h]);
            self.components[i].set(ctx, &format!("pc-{i}"), img);
            self.component_top[i] = top;
        }
        let s = &u.stats;
        // Calibrated: mean ± 1.96 calibrated std (what the card's 95% coverage was checked on);
        // else the chains' own 2.5% and 97.5% quantiles.
        let (lower, upper, std) = match cal {
            Some((c, chains)) if u.mean.len() == d && u.variance.len() == d => {
                let std: Vec<f32> = (u.variance.iter())
                    .map(|v| c.variance(*v, chains).sqrt())
                    .collect();
                let at = |sign: f32| -> Vec<f32> {
                    (u.mean.iter().zip(&std))
                        .map(|(m, s)| m + sign * 1.96 * s)
                        .collect()
                };
                (at(-1.0), at(1.0), std)
            }
            _ => (
                s.lower.clone(),
                s.upper.clone(),
                u.variance.iter().map(|v| v.max(0.0).sqrt()).collect(),
            ),
        };
        if lower.len() == d {
            self.lower
                .set(ctx, "q-lower", views::to_color_image(&lower, shape));
            self.upper
                .set(ctx, "q-upper", views::to_color_image(&upper, shape));
        }
        let spread: Vec<f32> = if show_width {
            upper.iter().zip(&lower).map(|(a, b)| a - b).collect()
        } else {
            std
        };
        let (img, top) = views::viridis_image(&views::channel_mean(&spread, shape), [w, h]);
        self.spread.set(ctx, "q-spread", img);
        self.spread_top = top;
        match (&s.calibration, truth) {
            (Some(c), Some(truth)) => {
                self.surprise.set(
                    ctx,
                    "surprise",
                    views::marked_image(truth, &c.surprise, shape),
                );
                let (img, top) =
                    views::viridis_image(&views::channel_mean(&c.crps_map, shape), [w, h]);
                self.crps.set(ctx, "crps", img);
                self.crps_top = top;
            }
            _ => {
                self.surprise.clear();
                self.crps.clear();
            }
        }
        self.moved_key = None;
    }

    /// The picture t standard deviations along direction `i`.
    pub fn update_moved(
        &mut self,
        ctx: &egui::Context,
        run_id: u64,
        u: &UncertaintyFrame,
        shape: [usize; 3],
        i: usize,
        t: f64,
    ) {
        if i >= u.pca.k() {
            self.moved.clear();
            return;
        }
        let key = (run_id, u.step, i, (t * 1000.0).round() as i64);
        if self.moved_key == Some(key) {
            return;
        }
        self.moved_key = Some(key);
        self.moved.set(
            ctx,
            "pc-moved",
            views::to_color_image(&u.pca.along(&u.mean, i, t), shape),
        );
    }
}
