//! The bottom line: backend, the run's state and figures, the UI's own frame time.

use super::actions::Action;
use crate::engine::{Snapshot, Status};

/// The compute devices the status line offers.
pub struct Devices<'a> {
    pub options: &'a [super::DeviceOption],
    /// The key chosen (None: automatic).
    pub current: Option<&'a str>,
}

/// What the status line shows.
pub struct StatusView<'a> {
    pub backend: &'a str,
    /// The device combo (None: the backend as text only).
    pub devices: Option<Devices<'a>>,
    pub latest: Option<&'a Snapshot>,
    /// UI time per frame, p95 (None in deterministic test runs).
    pub frame_p95_ms: Option<f32>,
    /// Show timing figures (off for snapshot tests).
    pub timings: bool,
}

/// Draws the line; the device combo returns the device the user chose.
pub fn status_ui(ui: &mut egui::Ui, v: &StatusView) -> Vec<Action> {
    let mut out = vec![];
    ui.horizontal(|ui| {
        match &v.devices {
            Some(d) => out.extend(device_combo(ui, d, v.backend)),
            None => {
                ui.label(format!("backend: {}", v.backend));
            }
        }
        ui.separator();
        let Some(s) = v.latest else {
            ui.label("ready: press Run");
            return;
        };
        ui.label(status_text(&s.status));
        ui.separator();
        let anneals = s.inputs.as_ref().is_none_or(|i| i.anneals);
        let mut figures = format!("step {}/{}  NFE {}", s.step, s.total_steps, s.nfe);
        if anneals {
            figures += &format!("  σ {}", sigma_text(s.sigma));
        }
        figures += &format!("  {} chains", s.chains);
        ui.label(figures);
        if let Some(p) = s.psnr {
            ui.label(format!("PSNR(mean) {p:.2} dB"));
        }
        if let Some(d) = s.inputs.as_ref().and_then(|i| i.detail.as_deref()) {
            ui.separator();
            ui.label(egui::RichText::new(d).weak());
        }
        if v.timings {
            ui.separator();
            ui.label(speed_text(s));
        }
        if let Some(p95) = v.frame_p95_ms {
            ui.separator();
            ui.label(format!("frame p95 {p95:.1} ms"));
        }
    });
    out
}

/// "backend: …" as a combo of the devices: choosing one restarts the engine on it.
fn device_combo(ui: &mut egui::Ui, d: &Devices, running_on: &str) -> Vec<Action> {
    let mut out = vec![];
    ui.label("backend:");
    egui::ComboBox::from_id_salt("device")
        .selected_text(running_on)
        .show_ui(ui, |ui| {
            if ui
                .selectable_label(d.current.is_none(), "automatic")
                .clicked()
                && d.current.is_some()
            {
                out.push(Action::ChooseDevice(None));
            }
            for o in d.options {
                let on = d.current == Some(o.key.as_str());
                if ui.selectable_label(on, &o.label).clicked() && !on {
                    out.push(Action::ChooseDevice(Some(o.key.clone())));
                }
            }
        })
        .response
        .on_hover_text(
            "Compute device: choosing another restarts the engine (the run is forgotten)",
        );
    out
}

pub fn status_text(s: &Status) -> String {
    match s {
        Status::Running => "running".into(),
        Status::Paused => "paused".into(),
        Status::Done => "done".into(),
        Status::Stopped => "stopped".into(),
        Status::Failed(m) => format!("failed: {m}"),
    }
}

/// σ with enough digits to read at every scale (0.002 … 80).
pub fn sigma_text(sigma: f64) -> String {
    if sigma == 0.0 {
        "0".into()
    } else if sigma < 0.01 {
        format!("{sigma:.2e}")
    } else {
        format!("{sigma:.3}")
    }
}

/// Steps per second while sampling (pauses excluded), or the time taken once finished.
pub fn speed_text(s: &Snapshot) -> String {
    match s.status {
        Status::Running if s.step >= 2 && s.steps_per_second > 0.0 => {
            let left = s.total_steps.saturating_sub(s.step) as f64 / s.steps_per_second;
            format!(
                "{:.1} steps/s, {} left",
                s.steps_per_second,
                super::estimate::duration_text(left)
            )
        }
        Status::Running | Status::Paused => format!("{:.1} s sampling", s.busy_seconds),
        _ => format!("{} steps in {:.2} s", s.step, s.busy_seconds),
    }
}

/// A compute device the window offers: what the combo shows and what `--device` would take.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOption {
    pub label: String,
    pub key: String,
}

/// The adapters of this machine and the CPU backend (listed once, at start-up).
pub fn device_options() -> Vec<DeviceOption> {
    let mut out: Vec<DeviceOption> = crate::backend::adapters()
        .into_iter()
        .map(|a| DeviceOption {
            label: format!(
                "{} ({}{})",
                a.name,
                a.api,
                if a.software { ", software" } else { "" }
            ),
            key: a.name,
        })
        .collect();
    out.push(DeviceOption {
        label: "cpu (burn flex)".into(),
        key: "cpu".into(),
    });
    out
}

pub fn percentile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() - 1) as f64 * q).round() as usize]
}
