//! The measurement preview, computed off the UI thread: the window sends the current choices,
//! a worker simulates y exactly as the run will (same function, same noise draw) and leaves the
//! newest result in a latest-wins slot.

use super::catalog::WorkingImage;
use super::mask_editor::MaskEditor;
use super::setup::Setup;
use crate::error::Result;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

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
}

type Slot = Arc<Mutex<Option<(u64, std::result::Result<Measurement, String>)>>>;

pub struct PreviewWorker {
    tx: Option<Sender<Request>>,
    slot: Slot,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl PreviewWorker {
    /// `wake` is called when a result is ready (the window passes a repaint request).
    pub fn spawn(wake: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let slot: Slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let handle = std::thread::Builder::new()
            .name("posterior-lab-preview".into())
            .spawn(move || serve(rx, out, wake))
            .ok();
        Self {
            tx: Some(tx),
            slot,
            handle,
        }
    }

    pub fn request(&self, req: Request) {
        if let Some(tx) = &self.tx {
            // A worker that is gone leaves the preview empty; the run itself is unaffected.
            let _ = tx.send(req);
        }
    }

    /// The newest finished preview, once.
    pub fn take(&self) -> Option<(u64, std::result::Result<Measurement, String>)> {
        self.slot.lock().ok()?.take()
    }
}

impl Drop for PreviewWorker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(rx: Receiver<Request>, slot: Slot, wake: Option<Arc<dyn Fn() + Send + Sync>>) {
    while let Ok(mut req) = rx.recv() {
        // Only the newest request matters: skip those queued behind it.
        while let Ok(newer) = rx.try_recv() {
            req = newer;
        }
        let result = measure(&req).map_err(|e| e.to_string());
        if let Ok(mut s) = slot.lock() {
            *s = Some((req.key, result));
        }
        if let Some(w) = &wake {
            w();
        }
    }
}

/// The preview's y, on the CPU backend.
pub fn measure(req: &Request) -> Result<Measurement> {
    let device = burn::tensor::Device::flex();
    let shape = req.image.shape;
    let op = req.setup.operator(shape, &req.mask, &device)?;
    let [c, h, w] = shape;
    let x = crate::tensor::from_vec(req.image.data.clone(), [1, c, h, w], &device);
    let y = req.setup.measure(op.as_ref(), x);
    let (y_view, seen) = crate::operators::display_measurement(op.as_ref(), y)?;
    Ok(Measurement {
        y_view,
        seen,
        shape,
    })
}
