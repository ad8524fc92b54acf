//! The lab's side panel: the scene (bundled examples, the components, the measurement, σ_y),
//! the sampler with its particles, what the plot shows, and what the chosen sampler's arrows
//! mean.

use super::{Lab, LabAction};
use crate::lab::picture::Density;
use crate::lab::{Component, LabScene, Measure, examples, lessons};
use crate::samplers;

/// Draws the panel; returns what needs the worker (edits re-run, Run, examples).
pub fn panel_ui(ui: &mut egui::Ui, lab: &mut Lab) -> Vec<LabAction> {
    let mut out = vec![];
    ui.label(
        egui::RichText::new(
            "Guided diffusion in the plane, where everything is exact: drag a mean, its \
             square handle or the green line; double-click to add a component.",
        )
        .weak(),
    );
    egui::ComboBox::from_label("example scene")
        .selected_text("choose…")
        .show_ui(ui, |ui| {
            for name in examples::NAMES {
                if ui.selectable_label(false, name).clicked() {
                    out.push(LabAction::Example(name.into()));
                }
            }
        });
    ui.separator();
    egui::CollapsingHeader::new("Prior components")
        .default_open(true)
        .show(ui, |ui| out.extend(components_ui(ui, &lab.prefs.scene)));
    egui::CollapsingHeader::new("Measurement")
        .default_open(true)
        .show(ui, |ui| out.extend(measure_ui(ui, &lab.prefs.scene)));
    egui::CollapsingHeader::new("Sampler")
        .default_open(true)
        .show(ui, |ui| out.extend(sampler_ui(ui, lab)));
    egui::CollapsingHeader::new("Show")
        .default_open(true)
        .show(ui, |ui| show_ui(ui, lab));
    out
}

/// Gives a widget without a visible label its accessible name.
pub fn named(resp: egui::Response, typ: egui::Role, name: String) -> egui::Response {
    resp.widget_info(|| egui::WidgetInfo::labeled(typ, true, name.clone()));
    resp
}

/// An edit from a widget: finished unless a drag is still going on.
fn edit(scene: LabScene, resp: &egui::Response) -> LabAction {
    LabAction::Edit {
        scene,
        done: !resp.dragged() || resp.drag_stopped(),
    }
}

fn components_ui(ui: &mut egui::Ui, scene: &LabScene) -> Vec<LabAction> {
    let mut out = vec![];
    let total: f64 = scene.components.iter().map(|c| c.weight).sum();
    egui::Grid::new("lab-components")
        .striped(true)
        .show(ui, |ui| {
            ui.label("");
            ui.label("weight");
            ui.label("spread (sd)");
            ui.label("");
            ui.end_row();
            for (k, c) in scene.components.iter().enumerate() {
                ui.label(format!("{}", k + 1));
                let mut w = c.weight / total;
                let r = ui.add(
                    egui::DragValue::new(&mut w)
                        .speed(0.005)
                        .range(0.001..=1.0)
                        .max_decimals(3),
                );
                let r = named(r, egui::Role::SpinButton, format!("weight {}", k + 1));
                if r.changed() || r.drag_stopped() {
                    let mut s = scene.clone();
                    // The others keep their share of the rest.
                    let rest = (1.0 - w) / (1.0 - c.weight / total).max(1e-9);
                    for (j, o) in s.components.iter_mut().enumerate() {
                        o.weight = if j == k { w } else { o.weight / total * rest };
                    }
                    out.push(edit(s, &r));
                }
                let sd = (0.5 * (c.cov[0] + c.cov[2])).sqrt();
                let mut new_sd = sd;
                let r = ui.add(
                    egui::DragValue::new(&mut new_sd)
                        .speed(0.005)
                        .range(0.02..=3.0)
                        .max_decimals(3),
                );
                let r = named(r, egui::Role::SpinButton, format!("spread {}", k + 1));
                if (r.changed() || r.drag_stopped()) && new_sd > 0.0 {
                    let mut s = scene.clone();
                    s.components[k] = c.scaled((new_sd / sd).powi(2));
                    out.push(edit(s, &r));
                }
                let removable = scene.components.len() > 1;
                if ui
                    .add_enabled(removable, egui::Button::new("Remove").small())
                    .on_hover_text(format!("Remove component {}", k + 1))
                    .clicked()
                {
                    let mut s = scene.clone();
                    s.components.remove(k);
                    out.push(LabAction::Edit {
                        scene: s,
                        done: true,
                    });
                }
                ui.end_row();
            }
        });
    if ui.button("Add component").clicked()
        && scene.components.len() < crate::lab::scene::MAX_COMPONENTS
    {
        let mut s = scene.clone();
        let w = total / scene.components.len().max(1) as f64;
        s.components.push(Component::isotropic(w, [0.0, 0.0], 0.3));
        out.push(LabAction::Edit {
            scene: s,
            done: true,
        });
    }
    out
}

fn measure_ui(ui: &mut egui::Ui, scene: &LabScene) -> Vec<LabAction> {
    let mut out = vec![];
    let mut s = scene.clone();
    ui.horizontal(|ui| {
        let is_line = matches!(s.measure, Measure::Line { .. });
        if ui.selectable_label(is_line, "Projection a·x").clicked() && !is_line {
            s.measure = Measure::Line {
                angle: 0.0,
                offset: 0.0,
            };
            out.push(LabAction::Edit {
                scene: s.clone(),
                done: true,
            });
        }
        let is_point = matches!(s.measure, Measure::Point { .. });
        if ui.selectable_label(is_point, "Both coordinates").clicked() && !is_point {
            s.measure = Measure::Point { y: [0.0, 0.0] };
            out.push(LabAction::Edit {
                scene: s.clone(),
                done: true,
            });
        }
    });
    match &mut s.measure {
        Measure::Line { angle, offset } => {
            let mut deg = angle.to_degrees();
            let r1 = ui.add(egui::Slider::new(&mut deg, -180.0..=180.0).text("angle (deg)"));
            let r2 = ui.add(egui::Slider::new(offset, -4.0..=4.0).text("y"));
            *angle = deg.to_radians();
            let mut pick = None;
            ui.horizontal(|ui| {
                if ui.button("Observe x1").clicked() {
                    pick = Some(0.0);
                }
                if ui.button("Observe x2").clicked() {
                    pick = Some(90.0);
                }
            });
            if let Some(d) = pick {
                *angle = f64::to_radians(d);
                out.push(LabAction::Edit {
                    scene: s.clone(),
                    done: true,
                });
            }
            for r in [r1, r2] {
                if r.changed() || r.drag_stopped() {
                    out.push(edit(s.clone(), &r));
                }
            }
        }
        Measure::Point { y } => {
            let r1 = ui.add(egui::Slider::new(&mut y[0], -4.0..=4.0).text("y1"));
            let r2 = ui.add(egui::Slider::new(&mut y[1], -4.0..=4.0).text("y2"));
            for r in [r1, r2] {
                if r.changed() || r.drag_stopped() {
                    out.push(edit(s.clone(), &r));
                }
            }
        }
        Measure::Matrix { rows, .. } => {
            ui.label(format!(
                "From the recipe: {} row(s) of A (drawn as lines).",
                rows.len()
            ));
        }
    }
    let r = ui.add(
        egui::Slider::new(&mut s.sigma_y, 0.01..=2.0)
            .logarithmic(true)
            .text("noise σ_y"),
    );
    if r.changed() || r.drag_stopped() {
        out.push(edit(s, &r));
    }
    out
}

fn sampler_ui(ui: &mut egui::Ui, lab: &mut Lab) -> Vec<LabAction> {
    let mut out = vec![];
    let prefs = &mut lab.prefs;
    let parsed = samplers::parse(&prefs.sampler);
    let name = parsed.as_ref().map_or("?", |s| s.name());
    egui::ComboBox::from_label("sampler")
        .selected_text(name)
        .show_ui(ui, |ui| {
            for info in samplers::ALL {
                if ui.selectable_label(info.name == name, info.name).clicked() {
                    prefs.sampler = info.preset.into();
                }
            }
        });
    let r = ui.add(egui::TextEdit::singleline(&mut prefs.sampler).desired_width(f32::INFINITY));
    named(
        r,
        egui::Role::TextInput,
        "sampler as a recipe writes it".into(),
    );
    if let Err(e) = &parsed {
        ui.colored_label(
            egui::Color32::from_rgb(200, 40, 40),
            format!("not a sampler: {e}"),
        );
    }
    ui.add(
        egui::Slider::new(&mut prefs.particles, 100..=4000)
            .logarithmic(true)
            .text("particles"),
    );
    ui.horizontal(|ui| {
        let l = ui.label("seed");
        ui.add(egui::DragValue::new(&mut prefs.seed))
            .labelled_by(l.id);
    });
    ui.checkbox(&mut prefs.rerun_on_edit, "Run again after each edit");
    ui.horizontal(|ui| {
        if ui.button("Run particles").clicked() {
            out.push(LabAction::Run);
        }
        let running = lab.run.as_ref().is_some_and(|r| !r.finished);
        if ui
            .add_enabled(running, egui::Button::new("Stop particles"))
            .clicked()
        {
            out.push(LabAction::Stop);
        }
    });
    let lesson = lessons::lesson(name);
    if !lesson.text.is_empty() {
        ui.label(egui::RichText::new(lesson.text).small());
    }
    out
}

fn show_ui(ui: &mut egui::Ui, lab: &mut Lab) {
    let arrow = lab.sampler_arrow();
    let annealed = lab
        .run
        .as_ref()
        .is_some_and(|r| r.anneals && !r.frames.is_empty());
    let prefs = &mut lab.prefs;
    egui::ComboBox::from_label("shade")
        .selected_text(prefs.density.label())
        .show_ui(ui, |ui| {
            for d in Density::ALL {
                ui.selectable_value(&mut prefs.density, d, d.label());
            }
        });
    ui.checkbox(&mut prefs.noised, "noised at the shown σ (p_σ)");
    ui.label("Arrows at the shown σ:");
    let a = &mut prefs.arrows;
    ui.checkbox(&mut a.prior, "prior score");
    ui.checkbox(&mut a.posterior, "exact posterior score");
    ui.checkbox(&mut a.exact_guidance, "exact guidance (posterior − prior)");
    let label = arrow.map_or(
        "the sampler's guidance (it follows none)".to_string(),
        |f| format!("the sampler's: {}", f.label()),
    );
    ui.add_enabled(arrow.is_some(), egui::Checkbox::new(&mut a.sampler, label));
    ui.horizontal(|ui| {
        ui.label("Particles as");
        ui.selectable_value(&mut prefs.show_x0, false, "x_t");
        ui.selectable_value(&mut prefs.show_x0, true, "x0-hat");
    });
    ui.checkbox(&mut prefs.trails, "trails");
    ui.checkbox(&mut prefs.reference, "exact posterior samples (grey)");
    ui.add_enabled(
        !annealed,
        egui::Slider::new(&mut prefs.sigma, 0.001..=20.0)
            .logarithmic(true)
            .text("σ when no run"),
    )
    .on_disabled_hover_text("The shown step's σ is used while an annealed run is shown.");
    if ui.button("Reset view").clicked() {
        prefs.bounds = Default::default();
    }
}
