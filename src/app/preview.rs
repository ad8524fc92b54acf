//! The measurement preview, computed off the UI thread: the window sends the current choices,
//! a worker simulates y exactly as the run will (same function, same noise draw) and leaves the
//! newest result in a latest-wins slot.

use super::catalog::WorkingImage;
use super::latest::{LatestWorker, Wake};
use super::mask_editor::MaskEditor;
use super::setup::Setup;
use super::{Mode, PosteriorApp};
use crate::error::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the preview is computed from.
pub struct Request {
    pub key: u64,
    pub setup: Setup,
    pub mask: MaskEditor,
    pub image: Arc<WorkingImage>,
}

/// y in x's image space, which pixels A sees, the picture's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub y_view: Vec<f32>,
    pub seen: Vec<bool>,
    pub shape: [usize; 3],
    /// Inpainting: the share of a patch prior's tiles that hold a missing pixel (what DDRM
    /// evaluates while σ is above σ_y; the time estimate reads it).
    pub damage_share: Option<f64>,
}

type Answer = (u64, std::result::Result<Measurement, String>);

pub struct PreviewWorker(LatestWorker<Request, Answer>);

impl PreviewWorker {
    pub fn spawn(wake: Wake) -> Self {
        Self(LatestWorker::spawn(
            "posterior-lab-preview",
            wake,
            |req: Request| (req.key, measure(&req).map_err(|e| e.to_string())),
        ))
    }

    pub fn request(&self, req: Request) {
        // A worker that is gone leaves the preview empty; the run itself is unaffected.
        self.0.send(req);
    }

    /// The newest finished preview, once.
    pub fn take(&self) -> Option<Answer> {
        self.0.take()
    }
}

/// The preview's y, on the CPU backend.
pub fn measure(req: &Request) -> Result<Measurement> {
    let device = burn::tensor::Device::flex();
    let picture = req.image.shape;
    // x's shape: the picture's, or larger when a small picture is the y to upscale.
    let shape = req.setup.x_shape(picture);
    let op = req.setup.operator(shape, &req.mask, &device)?;
    let [c, h, w] = picture;
    let x = crate::tensor::from_vec(req.image.data.clone(), [1, c, h, w], &device);
    let y = req.setup.measure(op.as_ref(), x)?;
    let (y_view, seen) = crate::operators::display_measurement(op.as_ref(), y)?;
    let damage_share = (op.task() == crate::operators::Task::Inpaint)
        .then(|| damage_share(&seen, shape))
        .flatten();
    Ok(Measurement {
        y_view,
        seen,
        shape,
        damage_share,
    })
}

/// The share of the default tiles of a patch prior that hold a pixel missing in some channel;
/// None when one tile covers the picture.
fn damage_share(seen: &[bool], [c, h, w]: [usize; 3]) -> Option<f64> {
    let plan = crate::priors::Tiling::default().plan(h, w)?;
    let missing: Vec<bool> = (0..h * w)
        .map(|p| (0..c).any(|ch| !seen.get(ch * h * w + p).copied().unwrap_or(true)))
        .collect();
    Some(plan.tiles_touching(&missing).len() as f64 / plan.tiles().max(1) as f64)
}

impl PosteriorApp {
    /// Asks the worker for the preview of the current choices and takes what it finished.
    pub(super) fn update_preview(&mut self, ctx: &egui::Context) {
        let Some(img) = self.image.clone() else {
            return;
        };
        let truth_key = Arc::as_ptr(&img) as u64;
        if self.truth_key != Some(truth_key) {
            self.truth_key = Some(truth_key);
            self.preview_tex.set_truth(ctx, &img.data, img.shape);
        }
        if self.mode != Mode::Designer {
            return;
        }
        let key = self.measurement_key();
        if key.is_some() && key != self.preview_key {
            self.preview_key = key;
            self.previewer.request(Request {
                key: key.unwrap_or_default(),
                setup: self.setup.clone(),
                mask: self.mask.clone(),
                image: img,
            });
            if self.deterministic {
                // Tests draw what a user would see once the preview is in (snapshots).
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(20) {
                    if let Some(done) = self.previewer.take() {
                        let finished = Some(done.0) == key;
                        self.take_preview(ctx, done);
                        if finished {
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                return;
            }
        }
        if let Some(done) = self.previewer.take() {
            self.take_preview(ctx, done);
        }
    }

    fn take_preview(
        &mut self,
        ctx: &egui::Context,
        (key, result): (u64, std::result::Result<Measurement, String>),
    ) {
        if Some(key) != self.preview_key {
            return;
        }
        match result {
            Ok(m) => {
                self.preview_tex.set_y(ctx, &m);
                self.preview = Some(m);
            }
            Err(e) => {
                self.preview = None;
                self.preview_tex.y.clear();
                self.toasts.error(e);
            }
        }
    }
}
