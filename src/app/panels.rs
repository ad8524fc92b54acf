//! The window's panels around the views: the toolbar and status line, the designer or recipe
//! editor on the left, and the central pages (restoration, uncertainty, 2-D lab). Each draws
//! and returns what the user asked for; [`PosteriorApp::frame`] applies it after drawing.

use super::toolbar::CentralTab;
use super::*;

impl PosteriorApp {
    /// The toolbar on top and the status line at the bottom.
    pub(super) fn bars_ui(&mut self, ui: &mut egui::Ui, latest: Option<&Snapshot>) -> Vec<Action> {
        let mut actions = vec![];
        let status = latest.map(|s| s.status.clone());
        egui::Panel::top("toolbar").show(ui, |ui| {
            let opened = self.models.open;
            actions = toolbar::toolbar_ui(
                ui,
                status.as_ref(),
                latest.is_some(),
                &mut self.prefs,
                &mut self.window,
                &mut self.show_about,
                &mut self.models.open,
            );
            if self.models.open && !opened {
                actions.push(Action::RefreshModels);
            }
        });
        let frame_p95 = (!self.deterministic && self.frame_ms.len() > 10)
            .then(|| percentile(&self.frame_ms, 0.95));
        egui::Panel::bottom("status").show(ui, |ui| {
            actions.extend(status_bar::status_ui(
                ui,
                &status_bar::StatusView {
                    backend: &self.backend,
                    devices: Some(status_bar::Devices {
                        options: &self.devices,
                        current: self.device.as_deref(),
                    }),
                    latest,
                    frame_p95_ms: frame_p95,
                    timings: !self.deterministic,
                },
            ));
        });
        actions
    }

    /// The left panel: the designer or the recipe editor.
    pub(super) fn controls_ui(&mut self, ui: &mut egui::Ui) -> Vec<Action> {
        let mut actions = vec![];
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                ui.heading("Posterior Lab");
                if self.prefs.tab == CentralTab::Lab {
                    ui.label(egui::RichText::new("2-D lab").strong());
                    ui.separator();
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        let edits = lab::panel::panel_ui(ui, &mut self.lab);
                        actions.extend(edits.into_iter().map(Action::Lab));
                    });
                    return;
                }
                actions.extend(controls::mode_tabs_ui(ui, &self.mode));
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| match &mut self.mode {
                    Mode::Recipe { text, base } => controls::recipe_ui(ui, text, base),
                    Mode::Designer => {
                        let note = self.image_note();
                        let v = designer::DesignerView {
                            priors: &self.priors,
                            image_note: note.as_deref(),
                            switched_from: self.prior_switch.as_deref(),
                            own_side: self.image.as_ref().map(|i| i.own_side),
                            file_quality: self.image.as_ref().and_then(|i| i.jpeg_quality),
                            pixels: self.image.as_ref().map(|i| {
                                let [_, h, w] = self.setup.x_shape(i.shape);
                                h * w
                            }),
                            speed: self.speed,
                            damage_share: self.damage_share(),
                        };
                        actions.extend(designer::designer_ui(
                            ui,
                            &v,
                            &mut self.setup,
                            &mut self.mask,
                            &mut self.working_side,
                        ));
                    }
                });
            });
        actions
    }

    /// The views: inputs, results, before/after and the chains.
    pub(super) fn central_ui(
        &mut self,
        ui: &mut egui::Ui,
        latest: Option<&Snapshot>,
    ) -> Vec<Action> {
        let mut actions = vec![];
        let stale = self.results_are_stale();
        let painting = self.mode == Mode::Designer && self.setup.op == OpKind::Inpaint;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                let tab = &mut self.prefs.tab;
                ui.selectable_value(tab, CentralTab::Restoration, "Restoration");
                ui.selectable_value(tab, CentralTab::Uncertainty, "Uncertainty")
                    .on_hover_text(
                        "How the chains vary (principal directions) and whether their spread \
                         covers the truth (intervals, calibration)",
                    );
                ui.selectable_value(tab, CentralTab::Lab, "2-D lab")
                    .on_hover_text(
                        "Guided diffusion in two dimensions: edit a mixture prior and a \
                     measurement, watch any sampler's particles against the exact posterior",
                    );
            });
            ui.separator();
            if self.prefs.tab == CentralTab::Lab {
                let timings = !self.deterministic;
                let bar = lab::timeline::timeline_ui(ui, &mut self.lab, timings);
                let edits = lab::canvas::canvas_ui(ui, &mut self.lab);
                actions.extend(bar.into_iter().chain(edits).map(Action::Lab));
                return;
            }
            if self.prefs.tab == CentralTab::Uncertainty {
                egui::ScrollArea::both().show(ui, |ui| {
                    let v = uncertainty::UncertaintyView {
                        frame: latest.and_then(|s| s.uncertainty.as_deref()),
                        tex: &self.utex,
                        mean: &self.tex.mean,
                        chains: &self.tex.chains,
                        chains_are_x0: self.prefs.show_x0,
                        chains_total: latest.map_or(0, |s| s.chains),
                        has_truth: latest
                            .and_then(|s| s.inputs.as_ref())
                            .is_some_and(|i| i.truth.is_some()),
                        stale,
                        timings: !self.deterministic,
                    };
                    uncertainty::uncertainty_ui(
                        ui,
                        &v,
                        &mut self.uncertainty,
                        &mut self.explorer,
                        &mut self.window,
                    );
                });
                return;
            }
            egui::ScrollArea::both().show(ui, |ui| {
                let v = results::ResultsView {
                    run: &self.tex,
                    preview: &self.preview_tex,
                    has_run: latest.is_some_and(|s| !s.shape.contains(&0)),
                    stale,
                    painting,
                    brush_radius: self.mask.radius,
                    show_x0: self.prefs.show_x0,
                    show_std: self.prefs.show_std,
                    first_answer: latest
                        .filter(|s| s.step == 0)
                        .and_then(|s| s.inputs.as_ref())
                        .and_then(|i| i.first_answer.as_ref())
                        .map(|(_, name)| *name),
                };
                actions = results::results_ui(
                    ui,
                    &v,
                    &mut self.window,
                    &mut self.compare,
                    &mut self.layout,
                    &mut self.prefs.focus,
                );
            });
        });
        actions
    }
}
