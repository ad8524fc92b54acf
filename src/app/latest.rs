//! A worker thread that answers only the newest request: the window's off-thread jobs (the
//! measurement preview, reading a picture) send requests as the user changes things, the worker
//! skips those a newer one overtook, and leaves its answer in a latest-wins slot.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

/// Called when an answer is ready (the window passes a repaint request).
pub type Wake = Option<Arc<dyn Fn() + Send + Sync>>;

pub struct LatestWorker<Q, A> {
    tx: Option<Sender<Q>>,
    slot: Arc<Mutex<Option<A>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl<Q: Send + 'static, A: Send + 'static> LatestWorker<Q, A> {
    /// A thread named `name` that answers each newest request with `work`.
    pub fn spawn(name: &str, wake: Wake, mut work: impl FnMut(Q) -> A + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Q>();
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(mut q) = rx.recv() {
                    // Only the newest request matters: skip those queued behind it.
                    while let Ok(newer) = rx.try_recv() {
                        q = newer;
                    }
                    let answer = work(q);
                    if let Ok(mut s) = out.lock() {
                        *s = Some(answer);
                    }
                    if let Some(w) = &wake {
                        w();
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            slot,
            handle,
        }
    }

    /// Sends a request; false when the worker is gone (it could not start).
    pub fn send(&self, q: Q) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(q).is_ok())
    }

    /// Leaves an answer in the slot as the worker would (for work done elsewhere).
    pub fn put(&self, a: A) {
        if let Ok(mut s) = self.slot.lock() {
            *s = Some(a);
        }
    }

    /// The newest finished answer, once.
    pub fn take(&self) -> Option<A> {
        self.slot.lock().ok()?.take()
    }
}

impl<Q, A> Drop for LatestWorker<Q, A> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
