//! Reading and decoding the chosen picture off the UI thread. A 12-megapixel JPEG takes a good
//! part of a second to read, decode and shrink; done between frames it froze the window, and
//! dragging the working-size slider re-decoded the file on every change. A worker does it now:
//! the window asks, keeps showing the picture it has, and takes the newest answer (latest wins).
//! The last decoded picture is kept, so a new working size or prior only resizes it.

use super::catalog::{self, WorkingImage};
use super::latest::{LatestWorker, Wake};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// What to load: a gallery name or a file path, fitted to a prior's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRequest {
    pub name: String,
    pub shape: [usize; 3],
    pub any_size: bool,
    pub working_side: usize,
}

/// A finished load: the request's number and name, and the picture or why there is none.
pub struct Loaded {
    pub id: u64,
    pub name: String,
    pub result: std::result::Result<WorkingImage, String>,
}

/// The picture decoded last: its name, its file's time and length (None for the gallery),
/// the image and a JPEG's quality, so a new working size or prior does not read and decode it
/// again.
type Decoded = (
    String,
    Option<(SystemTime, u64)>,
    Arc<image::DynamicImage>,
    Option<u32>,
);

pub struct ImageLoader {
    worker: LatestWorker<(u64, LoadRequest), Loaded>,
    /// The number of the newest request, and whether its answer is still to come.
    newest: u64,
    waiting: bool,
    /// The picture on screen: its request's number and name (the window sets it).
    pub shown: Option<(u64, String)>,
}

impl ImageLoader {
    pub fn spawn(wake: Wake) -> Self {
        let mut cache: Option<Decoded> = None;
        let worker = LatestWorker::spawn("posterior-lab-image", wake, move |(id, req)| {
            let result = load(&mut cache, &req).map_err(|e| e.to_string());
            Loaded {
                id,
                name: req.name,
                result,
            }
        });
        Self {
            worker,
            newest: 0,
            waiting: false,
            shown: None,
        }
    }

    /// Asks for a picture; answers to earlier requests are dropped from now on.
    pub fn request(&mut self, req: LoadRequest) {
        self.newest += 1;
        self.waiting = true;
        if !self.worker.send((self.newest, req.clone())) {
            // No worker (it could not start): load here rather than never.
            let result = load(&mut None, &req).map_err(|e| e.to_string());
            self.worker.put(Loaded {
                id: self.newest,
                name: req.name,
                result,
            });
        }
    }

    /// Whether the newest request is still being read.
    pub fn busy(&self) -> bool {
        self.waiting
    }

    /// The answer to the newest request, once; answers that a newer request overtook are
    /// dropped.
    pub fn take(&mut self) -> Option<Loaded> {
        let done = self.worker.take()?;
        if done.id != self.newest {
            return None;
        }
        self.waiting = false;
        Some(done)
    }

    /// Waits (up to `limit`) for the newest request's answer: the tests' deterministic frames.
    pub fn wait(&mut self, limit: std::time::Duration) -> Option<Loaded> {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < limit {
            if let Some(done) = self.take() {
                return Some(done);
            }
            if !self.waiting {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        None
    }
}

/// Reads and decodes `req.name` (or reuses the cached picture when the file is unchanged) and
/// fits it to the prior.
fn load(cache: &mut Option<Decoded>, req: &LoadRequest) -> Result<WorkingImage> {
    let gallery = catalog::gallery_bytes(&req.name);
    let stamp = match gallery {
        Some(_) => None,
        None => {
            let path = Path::new(&req.name);
            let meta = std::fs::metadata(path)
                .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
            Some((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            ))
        }
    };
    let (img, quality) = match cache {
        Some((name, s, img, q)) if *name == req.name && *s == stamp => (img.clone(), *q),
        _ => {
            let bytes = match gallery {
                Some(b) => std::borrow::Cow::Borrowed(b),
                None => std::borrow::Cow::Owned(crate::files::read(
                    Path::new(&req.name),
                    crate::files::MAX_DATA_BYTES,
                )?),
            };
            let img =
                Arc::new(crate::image_io::decode(&bytes).map_err(|e| Error::file(&req.name, e))?);
            let quality = crate::operators::jpeg::quality_of_file(&bytes).map(|(q, _)| q);
            *cache = Some((req.name.clone(), stamp, img.clone(), quality));
            (img, quality)
        }
    };
    let mut fitted = catalog::fit_image(&img, req.shape, req.any_size, req.working_side);
    fitted.jpeg_quality = quality;
    Ok(fitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn req(name: &str, side: usize) -> LoadRequest {
        LoadRequest {
            name: name.into(),
            shape: [3, 0, 0],
            any_size: true,
            working_side: side,
        }
    }

    #[test]
    fn the_newest_request_wins_and_a_new_size_reuses_the_decoded_file() {
        let dir = std::env::temp_dir().join(format!("pl-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.png");
        image::RgbImage::from_pixel(120, 80, image::Rgb([200, 10, 10]))
            .save(&path)
            .unwrap();
        let name = path.display().to_string();
        let mut loader = ImageLoader::spawn(None);
        // Asked and overtaken before any answer is taken.
        loader.request(req("coffee", 64));
        let mut fetch = |r: LoadRequest| {
            loader.request(r);
            (
                loader.wait(Duration::from_secs(20)).expect("an answer"),
                loader.busy(),
            )
        };
        let (done, busy) = fetch(req(&name, 64));
        assert_eq!(done.name, name, "the older request's answer is dropped");
        let img = done.result.unwrap();
        assert_eq!(img.shape, [3, 40, 64]);
        assert!(!busy);
        // Another working size of the same unchanged file: answered from the decoded picture.
        let img = fetch(req(&name, 120)).0.result.unwrap();
        assert_eq!((img.shape, img.own_side), ([3, 80, 120], 120));
        assert!((img.data[0] - (200.0 / 127.5 - 1.0)).abs() < 1e-6);
        // A file that changed on disk is read again.
        std::thread::sleep(Duration::from_millis(20));
        image::RgbImage::from_pixel(60, 60, image::Rgb([0, 0, 0]))
            .save(&path)
            .unwrap();
        let img = fetch(req(&name, 120)).0.result.unwrap();
        assert_eq!(img.shape, [3, 60, 60]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_file_is_named_in_the_answer() {
        let dir = std::env::temp_dir().join(format!("pl-loader-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.jpg");
        std::fs::write(&path, b"not a picture").unwrap();
        let mut loader = ImageLoader::spawn(None);
        for p in [path.clone(), dir.join("missing.png")] {
            loader.request(req(&p.display().to_string(), 64));
            let done = loader.wait(Duration::from_secs(20)).unwrap();
            let e = done.result.unwrap_err();
            assert!(e.contains(&p.display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
