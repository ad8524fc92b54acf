//! The designer panel: prior, picture, degradation (with the brush's settings) and sampler.
//! Widgets edit the choices in place; everything with a consequence (loading a picture, a
//! dialog, undo) comes back as an [`Action`].

use super::actions::Action;
use super::catalog::{self, PriorEntry};
use super::estimate;
use super::mask_editor::MaskEditor;
use super::setup::{OpKind, Setup};
use crate::priors::PriorSpec;
use crate::samplers;
use crate::samplers::auto::PriorKind;
use egui::{Color32, RichText};

/// What the panel shows but does not edit.
pub struct DesignerView<'a> {
    pub priors: &'a [PriorEntry],
    /// What was done to the picture to fit the prior ("resized from …").
    pub image_note: Option<&'a str>,
    /// The prior chosen before a colour photo switched it (offered back).
    pub switched_from: Option<&'a str>,
    /// The picture's own longer side (the "own size" button).
    pub own_side: Option<usize>,
    /// Pixels of x the run will restore, and this machine's speed: the time estimate.
    pub pixels: Option<usize>,
    pub speed: super::estimate::Speed,
    /// Inpainting: the share of a patch prior's tiles with a hole (the preview's).
    pub damage_share: Option<f64>,
    /// The quality a JPEG picture was saved at (its luminance table's nearest IJG quality).
    pub file_quality: Option<u32>,
}

pub fn designer_ui(
    ui: &mut egui::Ui,
    v: &DesignerView,
    setup: &mut Setup,
    mask: &mut MaskEditor,
    working_side: &mut usize,
) -> Vec<Action> {
    let mut out = vec![];
    let prior = v
        .priors
        .iter()
        .find(|p| p.name == setup.prior)
        .or(v.priors.first());
    prior_ui(ui, v, setup, &mut out);
    ui.add_space(6.0);
    image_ui(ui, v, prior, setup, working_side, &mut out);
    ui.add_space(6.0);
    degradation_ui(ui, setup, mask, &mut out);
    measurement_ui(ui, setup, v.file_quality);
    noise_ui(ui, setup);
    ui.add_space(6.0);
    sampler_ui(ui, v, setup, prior, &mut out);
    out
}

fn prior_ui(ui: &mut egui::Ui, v: &DesignerView, setup: &mut Setup, out: &mut Vec<Action>) {
    ui.label(RichText::new("Prior").strong());
    let current = v
        .priors
        .iter()
        .find(|p| p.name == setup.prior)
        .or(v.priors.first())
        .map(|p| p.label.clone())
        .unwrap_or_default();
    let before = setup.prior.clone();
    egui::ComboBox::new("prior", "prior")
        .selected_text(current)
        .width(170.0)
        .truncate()
        .show_ui(ui, |ui| {
            for p in v.priors {
                ui.selectable_value(&mut setup.prior, p.name.clone(), &p.label);
            }
        });
    if setup.prior != before {
        out.push(Action::PriorChanged);
    }
    let classes = v
        .priors
        .iter()
        .find(|p| p.name == setup.prior)
        .and_then(|p| p.classes);
    if let Some(n) = classes {
        ui.add(
            egui::DragValue::new(&mut setup.class)
                .range(0..=n.saturating_sub(1))
                .prefix("class "),
        )
        .on_hover_text(format!(
            "The network is class-conditional: one of its {n} classes"
        ));
    }
    if let Some(from) = v.switched_from {
        let label = v
            .priors
            .iter()
            .find(|p| p.name == from)
            .map_or(from, |p| &p.label);
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("chosen for this colour photo").small().weak());
            if ui
                .small_button("Undo")
                .on_hover_text(format!(
                    "Back to {label}: the photo becomes a grey thumbnail"
                ))
                .clicked()
            {
                out.push(Action::UndoPriorSwitch);
            }
        });
    }
}

fn image_ui(
    ui: &mut egui::Ui,
    v: &DesignerView,
    prior: Option<&PriorEntry>,
    setup: &mut Setup,
    working_side: &mut usize,
    out: &mut Vec<Action>,
) {
    ui.label(RichText::new("Image").strong());
    let before = setup.image.clone();
    ui.horizontal_wrapped(|ui| {
        let gallery = catalog::gallery_bytes(&setup.image).is_some();
        egui::ComboBox::new("gallery", "image")
            .selected_text(if gallery {
                setup.image.clone()
            } else {
                "(file)".into()
            })
            .show_ui(ui, |ui| {
                for (name, _) in catalog::GALLERY {
                    ui.selectable_value(&mut setup.image, name.to_string(), name);
                }
            });
        if ui
            .button("Open…")
            .on_hover_text("Open a PNG/JPEG (or drop one on the window)")
            .clicked()
        {
            out.push(Action::AskOpenImage);
        }
    });
    if let Some(note) = v.image_note {
        ui.label(RichText::new(note).small().weak());
    }
    ui.checkbox(&mut setup.image_is_y, "this picture is the degraded y")
        .on_hover_text(
            "Use a real degraded photo as the observation: y = A(picture) with no noise added \
             and no truth (the degradation below says what happened to it)",
        );
    if prior.is_some_and(|p| p.any_size) {
        let mut side = *working_side;
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::Slider::new(&mut side, 32..=catalog::MAX_WORKING_SIDE)
                    .logarithmic(true)
                    .text("working size (px)")
                    .step_by(4.0),
            )
            .on_hover_text(
                "The longer side the picture is restored at (never enlarged). Photos go \
                 through the prior in overlapping 48-pixel tiles, so any size runs; on a CPU \
                 about 1024 px is the practical limit, a GPU goes to 4096.",
            );
            if let Some(own) = v.own_side
                && ui
                    .add_enabled(own != side, egui::Button::new("own size"))
                    .on_hover_text(format!("Restore at the picture's own {own} px"))
                    .clicked()
            {
                side = own.min(catalog::MAX_WORKING_SIDE);
            }
        });
        if side != *working_side {
            *working_side = side;
            out.push(Action::ImageChanged);
        }
    }
    if setup.image != before {
        out.push(Action::ImageChanged);
    }
}

fn degradation_ui(
    ui: &mut egui::Ui,
    setup: &mut Setup,
    mask: &mut MaskEditor,
    out: &mut Vec<Action>,
) {
    ui.label(RichText::new("Degradation").strong());
    egui::ComboBox::new("operator", "degradation")
        .selected_text(setup.op.label())
        .show_ui(ui, |ui| {
            for k in OpKind::ALL {
                ui.selectable_value(&mut setup.op, k, k.label());
            }
        });
    match setup.op {
        OpKind::Inpaint => {
            let p = &mut setup.pattern;
            ui.horizontal(|ui| {
                ui.checkbox(&mut p.use_box, "box");
                ui.add_enabled(
                    p.use_box,
                    egui::Slider::new(&mut p.box_fraction, 0.1..=0.9).text("side"),
                );
            });
            ui.horizontal(|ui| {
                ui.checkbox(&mut p.use_random, "random");
                ui.add_enabled(
                    p.use_random,
                    egui::Slider::new(&mut p.keep_fraction, 0.05..=0.95).text("kept"),
                );
            });
            ui.label(RichText::new("Brush: paint on the y view to remove pixels").small());
            ui.horizontal(|ui| {
                ui.add(egui::Slider::new(&mut mask.radius, 0.5..=12.0).text("size"));
                ui.checkbox(&mut mask.eraser, "eraser");
            });
            ui.horizontal(|ui| {
                let ctx = ui.ctx().clone();
                if ui
                    .add_enabled(
                        mask.can_undo(),
                        egui::Button::new("Undo")
                            .shortcut_text(ctx.format_shortcut(&super::toolbar::UNDO)),
                    )
                    .clicked()
                {
                    out.push(Action::Undo);
                }
                if ui
                    .add_enabled(
                        mask.can_redo(),
                        egui::Button::new("Redo")
                            .shortcut_text(ctx.format_shortcut(&super::toolbar::REDO)),
                    )
                    .clicked()
                {
                    out.push(Action::Redo);
                }
            });
            ui.horizontal(|ui| {
                if ui.button("Clear").clicked() {
                    out.push(Action::ClearMask);
                }
                ui.checkbox(&mut mask.inverted, "invert");
            });
        }
        OpKind::Downsample => {
            ui.add(egui::Slider::new(&mut setup.factor, 2..=8).text("factor"));
        }
        OpKind::Blur => {
            ui.add(egui::Slider::new(&mut setup.blur_sigma, 0.3..=5.0).text("blur σ (px)"));
        }
        _ => {}
    }
}

/// The nonlinear degradations' settings.
fn measurement_ui(ui: &mut egui::Ui, setup: &mut Setup, file_quality: Option<u32>) {
    match setup.op {
        OpKind::Jpeg => match file_quality.filter(|_| setup.image_is_y) {
            // A real JPEG is y: its own quality, not a chosen one.
            Some(q) => {
                setup.jpeg_quality = q;
                ui.label(format!("quality {q}, read from the file's tables"));
            }
            None => {
                ui.add(egui::Slider::new(&mut setup.jpeg_quality, 1..=100).text("quality"));
            }
        },
        OpKind::Clip => {
            ui.add(egui::Slider::new(&mut setup.clip_gain, 1.0..=4.0).text("gain"))
                .on_hover_text("y = clip(gain·x, −1, 1): what was brighter than 1/gain burns out");
        }
        OpKind::PhaseRetrieval => {
            ui.add(egui::Slider::new(&mut setup.oversample, 1.0..=4.0).text("oversample"))
                .on_hover_text("Padding on each side, in eighths of the picture's size");
        }
        _ => {}
    }
}

fn noise_ui(ui: &mut egui::Ui, setup: &mut Setup) {
    let mut photons = setup.photon_peak.is_some();
    ui.checkbox(&mut photons, "photon noise")
        .on_hover_text("y counts photons (Poisson); the peak is the expected count of white");
    match (photons, setup.photon_peak) {
        (true, None) => setup.photon_peak = Some(20.0),
        (false, Some(_)) => setup.photon_peak = None,
        _ => {}
    }
    if let Some(peak) = &mut setup.photon_peak {
        ui.add(
            egui::Slider::new(peak, 1.0..=1000.0)
                .logarithmic(true)
                .text("peak"),
        );
    }
    if setup.op == OpKind::Jpeg {
        ui.label(RichText::new("No noise added: the round trip is deterministic").small());
        return;
    }
    let label = if photons {
        "read noise σ"
    } else {
        "noise σ_y"
    };
    ui.add(
        egui::Slider::new(&mut setup.noise_sigma, 0.001..=1.0)
            .logarithmic(true)
            .text(label),
    )
    .on_hover_text("Standard deviation of the Gaussian noise, in data units ([-1, 1] images)");
}

fn sampler_ui(
    ui: &mut egui::Ui,
    v: &DesignerView,
    setup: &mut Setup,
    prior: Option<&PriorEntry>,
    out: &mut Vec<Action>,
) {
    let mixture = prior.is_some_and(|p| matches!(p.spec, PriorSpec::Gmm(_)));
    // The prior's network cost per pixel against the reference photo prior's.
    let cost = prior.map_or(1.0, |p| p.cost);
    ui.label(RichText::new("Sampler").strong());
    let parsed = samplers::parse(&setup.sampler);
    let current = parsed
        .as_ref()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|_| "(edited)".into());
    egui::ComboBox::new("sampler", "sampler")
        .selected_text(current.clone())
        .show_ui(ui, |ui| {
            for info in samplers::ALL {
                let takes = info.supports(mixture).and_then(|()| {
                    info.takes_kind(setup.measurement_kind())
                        .map_err(|why| format!("{}: {why}", info.name))
                });
                let r = match takes {
                    Ok(()) => ui
                        .selectable_label(current == info.name, info.name)
                        .on_hover_text(info.help),
                    Err(why) => ui
                        .add_enabled(false, egui::Button::selectable(false, info.name))
                        .on_disabled_hover_text(why),
                };
                if r.clicked() {
                    let patch = prior.is_some_and(|p| p.any_size);
                    setup.sampler = info.preset_for(patch).to_string();
                }
            }
        });
    if let Ok(samplers::SamplerSpec::Auto(p)) = &parsed {
        aim_ui(ui, p, out);
    }
    if let Some(info) = samplers::info(&current) {
        ui.label(RichText::new(info.help).small().weak());
        if let Err(why) = info.supports(mixture) {
            ui.colored_label(Color32::LIGHT_RED, why);
        }
    }
    ui.add(
        egui::TextEdit::singleline(&mut setup.sampler)
            .code_editor()
            .desired_width(f32::INFINITY),
    )
    .on_hover_text("The recipe's sampler line; every field but steps has a tested default");
    if let Err(e) = &parsed {
        ui.colored_label(Color32::LIGHT_RED, e);
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut setup.chains)
                .range(1..=256)
                .prefix("chains "),
        );
        ui.add(egui::DragValue::new(&mut setup.seed).prefix("seed "));
    });
    if let (Ok(spec), Some(pixels)) = (&parsed, v.pixels) {
        let at = estimate::Situation {
            task: setup.op.task(),
            general: !setup.is_linear_gaussian(),
            prior: prior.map_or(PriorKind::Network, |p| {
                p.kind(setup.eps_family(), setup.noise_sigma)
            }),
            generator_top: prior.and_then(|p| p.generator_top),
            damage: (v.damage_share)
                .filter(|_| prior.is_some_and(|p| p.any_size))
                .map(|s| (s, setup.noise_sigma)),
        };
        if let Some(units) = estimate::cost_units(spec, &at) {
            let secs = v.speed.predict(units * cost, setup.chains, pixels);
            let source = if v.speed.measured {
                "at this machine's measured speed"
            } else {
                "at a 2-core CPU's speed until a run here measures this machine's"
            };
            ui.label(
                RichText::new(format!(
                    "Run takes {}, {source}",
                    estimate::duration_text(secs)
                ))
                .small(),
            )
            .on_hover_text(
                "Network evaluations × chains × pixels at the speed of the last finished \
                     runs; fewer chains, fewer steps, a smaller working size or Auto(speed: \
                     Fast) make it shorter",
            );
        }
    }
}

/// What an `Auto` run is for: the best mean (the restoration to keep) or chains that each look
/// like a photo; choosing one also shows the view it is for.
fn aim_ui(ui: &mut egui::Ui, p: &samplers::AutoParams, out: &mut Vec<Action>) {
    use samplers::auto::Goal;
    ui.horizontal(|ui| {
        ui.label("for");
        for (goal, hover) in [
            (
                Goal::Mean,
                "The restoration to keep: the posterior mean, as close to the truth as tested \
                 (its chains may look smooth in large holes)",
            ),
            (
                Goal::Diverse,
                "Chains that each look like a plausible picture, to see how different the \
                 restorations can be: slower, and their mean is a little less close",
            ),
        ] {
            if ui
                .selectable_label(p.goal == goal, goal.label())
                .on_hover_text(hover)
                .clicked()
                && p.goal != goal
            {
                out.push(Action::Aim(goal));
            }
        }
    });
}
