//! What the window offers: the priors found on disk (or embedded in the binary) and the bundled
//! gallery images, plus turning any picture into the working image of a prior.

use crate::error::{Error, Result};
use crate::priors::PriorSpec;
use crate::priors::network::{EpsCard, EpsOperator, ModelCard};
use crate::samplers::auto::PriorKind;
use std::path::{Path, PathBuf};

/// The shipped Fashion-MNIST prior, embedded so the window works from any folder.
const EMBEDDED_FASHION_CARD: &str = include_str!("../../models/fashion-mnist/card.ron");
const EMBEDDED_FASHION_WEIGHTS: &[u8] = include_bytes!("../../models/fashion-mnist/model.bpk");
const EMBEDDED_GMM_TOY: &str = include_str!("../../assets/recipes/gmm-8x8.ron");

/// Demo images bundled in the binary (licences: assets/LICENSES.md): the 28×28 images first,
/// then the photos (never part of any training set).
pub const GALLERY: [(&str, &[u8]); 19] = [
    (
        "fashion-sneaker",
        include_bytes!("../../assets/gallery/fashion-sneaker.png"),
    ),
    (
        "fashion-tshirt",
        include_bytes!("../../assets/gallery/fashion-tshirt.png"),
    ),
    (
        "fashion-trouser",
        include_bytes!("../../assets/gallery/fashion-trouser.png"),
    ),
    (
        "fashion-pullover",
        include_bytes!("../../assets/gallery/fashion-pullover.png"),
    ),
    (
        "fashion-dress",
        include_bytes!("../../assets/gallery/fashion-dress.png"),
    ),
    (
        "fashion-coat",
        include_bytes!("../../assets/gallery/fashion-coat.png"),
    ),
    (
        "fashion-sandal",
        include_bytes!("../../assets/gallery/fashion-sandal.png"),
    ),
    (
        "fashion-shirt",
        include_bytes!("../../assets/gallery/fashion-shirt.png"),
    ),
    (
        "fashion-bag",
        include_bytes!("../../assets/gallery/fashion-bag.png"),
    ),
    (
        "fashion-boot",
        include_bytes!("../../assets/gallery/fashion-boot.png"),
    ),
    (
        "digit-7",
        include_bytes!("../../assets/gallery/digit-7.png"),
    ),
    (
        "digit-3",
        include_bytes!("../../assets/gallery/digit-3.png"),
    ),
    ("coffee", include_bytes!("../../assets/demo/coffee.jpg")),
    ("chelsea", include_bytes!("../../assets/demo/chelsea.jpg")),
    (
        "astronaut",
        include_bytes!("../../assets/demo/astronaut.jpg"),
    ),
    ("flower", include_bytes!("../../assets/demo/flower.jpg")),
    ("seeding", include_bytes!("../../assets/demo/seeding.jpg")),
    (
        "picosdeeuropa",
        include_bytes!("../../assets/demo/picosdeeuropa.jpg"),
    ),
    ("camera", include_bytes!("../../assets/demo/camera.jpg")),
];

/// The gallery image a prior starts on: a photo for patch priors, a digit for digit priors.
pub fn default_image(prior: &PriorEntry) -> &'static str {
    if prior.any_size {
        "coffee"
    } else if prior.name.contains("mnist") && !prior.name.contains("fashion") {
        "digit-7"
    } else {
        "fashion-sneaker"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriorEntry {
    pub name: String,
    pub label: String,
    pub spec: PriorSpec,
    pub shape: [usize; 3],
    pub any_size: bool,
    /// Seconds per evaluation and pixel against the reference photo prior's (the time
    /// estimate); 0 for a mixture.
    pub cost: f64,
    /// What the EPS fine-tune beside it (`NAME-eps/`) was trained for, when there is one.
    pub eps: Option<EpsCard>,
    /// The highest start σ the one-step generator beside it (`NAME-cm/`) serves, when there is
    /// one: its `top` for a warm generator, infinity for one distilled from σ_max.
    pub generator_top: Option<f64>,
    /// The classes of a class-conditional (imported) network: the designer asks for one.
    pub classes: Option<usize>,
}

impl PriorEntry {
    /// How `Auto` will see this prior for an operator family and σ_y (the time estimate reads
    /// the same table row the run will).
    pub fn kind(&self, family: Option<EpsOperator>, sigma_y: f64) -> PriorKind {
        if matches!(self.spec, PriorSpec::Gmm(_)) {
            return PriorKind::Mixture;
        }
        let fine_tune =
            matches!((&self.eps, family), (Some(eps), Some(f)) if eps.covers(f, sigma_y));
        PriorKind::of_network(self.any_size, fine_tune)
    }
}

/// Priors on disk (first models folder that has them), the embedded fallbacks, the GMM toy.
pub fn priors(session: &Path) -> Vec<PriorEntry> {
    let mut out: Vec<PriorEntry> = vec![];
    let found_all = crate::models::all();
    // The companions a prior loads are the `NAME-eps` and `NAME-cm` folders beside it
    // (network.rs `sibling`).
    let card_beside = |dir: &Path, name: &str, suffix: &str| {
        let beside = dir.with_file_name(format!("{name}-{suffix}"));
        found_all
            .iter()
            .find(|f| f.dir == beside)
            .map(|f| f.card.clone())
    };
    let eps_of = |dir: &Path, name: &str| {
        card_beside(dir, name, "eps")
            .and_then(|c| c.eps)
            .filter(|e| e.base == name)
    };
    let generator_of = |dir: &Path, name: &str| {
        card_beside(dir, name, "cm")
            .and_then(|c| c.generator)
            .filter(|g| g.base == name)
            .map(|g| g.top.unwrap_or(f64::INFINITY))
    };
    // Every models folder, in resolution order (installed, user, beside the binary, …);
    // companions (EPS fine-tunes, distilled generators) are found through their base prior,
    // never offered as priors themselves.
    for found in &found_all {
        if found.card.companion_of().is_some() || out.iter().any(|e| e.name == found.card.name) {
            continue;
        }
        out.push(PriorEntry {
            label: label(&found.card),
            name: found.card.name.clone(),
            spec: PriorSpec::Model(found.dir.display().to_string()),
            shape: found.card.shape,
            any_size: found.card.any_size,
            cost: super::estimate::network_cost(&found.card),
            eps: eps_of(&found.dir, &found.card.name),
            generator_top: generator_of(&found.dir, &found.card.name),
            classes: (found.card.checkpoint.as_ref()).and_then(|c| c.network.num_classes),
        });
    }
    if !out.iter().any(|e| e.name == "fashion-mnist")
        && let Ok(p) = materialize_fashion(session)
        && let Ok(card) = ModelCard::parse(EMBEDDED_FASHION_CARD, &p)
    {
        out.insert(
            0,
            PriorEntry {
                label: label(&card),
                name: card.name.clone(),
                spec: PriorSpec::Model(p.display().to_string()),
                shape: card.shape,
                any_size: false,
                cost: super::estimate::network_cost(&card),
                eps: None,
                generator_top: None,
                classes: None,
            },
        );
    }
    let gmm = session.join("gmm-8x8.ron");
    if std::fs::write(&gmm, EMBEDDED_GMM_TOY).is_ok() {
        out.push(PriorEntry {
            name: "gmm-toy".into(),
            label: "mixture 8×8 (exact)".into(),
            spec: PriorSpec::Gmm(gmm.display().to_string()),
            shape: [1, 8, 8],
            any_size: false,
            cost: 0.0,
            eps: None,
            generator_top: None,
            classes: None,
        });
    }
    out
}

fn label(card: &ModelCard) -> String {
    let [c, h, w] = card.shape;
    let size = if card.any_size {
        format!("{c}-channel patches, any size")
    } else {
        format!("{c}×{h}×{w}")
    };
    format!("{} ({size})", card.name)
}

fn materialize_fashion(session: &Path) -> Result<PathBuf> {
    let dir = session.join("models").join("fashion-mnist");
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, format!("cannot create: {e}")))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::file(&p, format!("cannot write: {e}")))
    };
    write("card.ron", EMBEDDED_FASHION_CARD.as_bytes())?;
    write("model.bpk", EMBEDDED_FASHION_WEIGHTS)?;
    Ok(dir)
}

/// The picture the run restores, in the prior's shape and range [-1, 1].
/// The largest working size the window offers (a 4096² photo is for a GPU; the run's memory
/// check says what to reduce when it cannot fit).
pub const MAX_WORKING_SIDE: usize = 4096;

#[derive(Debug, Clone, PartialEq)]

pub struct WorkingImage {
    pub shape: [usize; 3],
    /// The picture's own longer side, before any resizing.
    pub own_side: usize,
    pub data: Vec<f32>,
    /// What was done to the picture to fit the prior (shown to the user, never silent).
    pub note: String,
    /// The picture was in colour and larger than a whole-image prior, which made it a small
    /// grey thumbnail: the window offers a photo prior instead.
    pub shrunk_to_grey: bool,
    /// The quality a JPEG file was saved at (its luminance table's nearest IJG quality).
    pub jpeg_quality: Option<u32>,
}

/// Fits a decoded picture to `shape`: channels converted; resized unless `any_size`, in which
/// case the longer side is limited to `working_side`, rounded to a multiple of 4.
pub fn fit_image(
    img: &image::DynamicImage,
    shape: [usize; 3],
    any_size: bool,
    working_side: usize,
) -> WorkingImage {
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let (h, w) = if any_size {
        let scale = (working_side as f64 / w0.max(h0) as f64).min(1.0);
        let r = |v: usize| (((v as f64 * scale) as usize) / 4 * 4).max(8);
        (r(h0), r(w0))
    } else {
        (shape[1], shape[2])
    };
    let c = shape[0];
    let mut notes = vec![];
    let resized = if (w0, h0) != (w, h) {
        notes.push(format!("resized from {w0}×{h0} to {w}×{h}"));
        std::borrow::Cow::Owned(img.resize_exact(
            w as u32,
            h as u32,
            image::imageops::FilterType::Triangle,
        ))
    } else {
        std::borrow::Cow::Borrowed(img)
    };
    let colour = resized.color().has_color();
    let mut data = Vec::with_capacity(c * h * w);
    if c == 1 {
        if colour {
            notes.push("converted to grey".into());
        }
        let g = resized.to_luma8();
        data.extend(g.pixels().map(|p| f32::from(p.0[0]) / 127.5 - 1.0));
    } else {
        let rgb = resized.to_rgb8();
        for ch in 0..c.min(3) {
            data.extend(rgb.pixels().map(|p| f32::from(p.0[ch]) / 127.5 - 1.0));
        }
    }
    let note = if notes.is_empty() {
        format!("{w}×{h}, as loaded")
    } else {
        format!("{} (the prior's working size)", notes.join(", "))
    };
    WorkingImage {
        own_side: w0.max(h0),
        jpeg_quality: None,
        shape: [c, h, w],
        data,
        note,
        shrunk_to_grey: c == 1 && colour && !any_size && (w0, h0) != (w, h),
    }
}

/// The prior a colour photo is best restored with: the shipped colour patch prior `photo`
/// (the fast one the photo tables measure), else any colour prior that restores any size.
pub fn photo_prior(priors: &[PriorEntry]) -> Option<&PriorEntry> {
    let colour_any_size = |p: &&PriorEntry| p.any_size && p.shape[0] == 3;
    (priors.iter().filter(colour_any_size))
        .find(|p| p.name == "photo")
        .or_else(|| priors.iter().find(colour_any_size))
}

pub fn gallery_bytes(name: &str) -> Option<&'static [u8]> {
    GALLERY.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::priors::network::EpsOperator as E;

    fn entry(spec: PriorSpec, any_size: bool, eps: Option<EpsCard>) -> PriorEntry {
        PriorEntry {
            name: "p".into(),
            label: "p".into(),
            spec,
            shape: [1, 28, 28],
            any_size,
            cost: 1.0,
            eps,
            generator_top: None,
            classes: None,
        }
    }

    /// The time estimate reads the table row the run will: a fine-tune counts only for the
    /// operator families and σ_y it was trained for.
    #[test]
    fn a_prior_entry_is_seen_as_auto_will_see_it() {
        let eps = EpsCard {
            base: "p".into(),
            operators: vec![E::Mask, E::Downsample(2)],
            sigma_y: (0.02, 0.1),
        };
        let net = entry(PriorSpec::Model("m".into()), false, Some(eps.clone()));
        assert_eq!(net.kind(Some(E::Mask), 0.05), PriorKind::NetworkWithEps);
        assert_eq!(net.kind(Some(E::Downsample(4)), 0.05), PriorKind::Network);
        assert_eq!(net.kind(Some(E::Mask), 0.5), PriorKind::Network);
        assert_eq!(net.kind(None, 0.05), PriorKind::Network);
        let patch = entry(PriorSpec::Model("m".into()), true, Some(eps));
        assert_eq!(
            patch.kind(Some(E::Downsample(2)), 0.02),
            PriorKind::PatchWithEps
        );
        let plain = entry(PriorSpec::Model("m".into()), true, None);
        assert_eq!(plain.kind(Some(E::Mask), 0.05), PriorKind::Patch);
        let gmm = entry(PriorSpec::Gmm("g.ron".into()), false, None);
        assert_eq!(gmm.kind(Some(E::Mask), 0.05), PriorKind::Mixture);
    }
}
