//! What the window tests share: whether a Vulkan adapter is there for kittest's wgpu renderer,
//! and the harness around an app. Included with `#[path]` by the window tests only.
#![allow(dead_code)]

use burn::tensor::Device;
use egui_kittest::Harness;
use posterior_lab::app::PosteriorApp;
use posterior_lab::engine::Engine;

pub fn has_vulkan() -> bool {
    // The wgpu renderer needs an adapter (lavapipe is enough). CI installs it and sets CI=true.
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return true;
    }
    !posterior_lab::backend::adapters().is_empty()
}

macro_rules! need_vulkan {
    () => {
        if !window::has_vulkan() {
            eprintln!("skipped: no Vulkan adapter (install mesa-vulkan-drivers)");
            return;
        }
    };
}

pub fn harness(app: PosteriorApp) -> Harness<'static, PosteriorApp> {
    quietly(|| {
        Harness::builder()
            .with_size([1280.0, 860.0])
            .wgpu_setup(render_setup())
            .build_eframe(move |_cc| app)
    })
}

/// Builds a harness with the driver's start-up noise silenced: Mesa's Vulkan device-selection
/// layer asks Wayland for the display's GPU when an instance is made, which on a headless
/// machine prints "error: XDG_RUNTIME_DIR is invalid…" lines that read as failures and are
/// none (as the program's own adapter probe, [`posterior_lab::backend::quiet_stderr`]).
pub fn quietly<T>(build: impl FnOnce() -> T) -> T {
    posterior_lab::backend::quiet_stderr(build)
}

/// kittest's wgpu set-up on the primary APIs only (Vulkan, Metal, DX12), as the program's own
/// adapter probe (GL adds EGL's windowing-system probes).
pub fn render_setup() -> eframe::egui_wgpu::WgpuSetup {
    let mut setup = egui_kittest::wgpu::default_wgpu_setup();
    if let eframe::egui_wgpu::WgpuSetup::CreateNew(new) = &mut setup {
        new.instance_descriptor.backends = eframe::wgpu::Backends::PRIMARY;
    }
    setup
}

/// A window on the CPU backend in test mode (no timings on screen, no settings, waits for what
/// it asked its workers).
pub fn test_app() -> PosteriorApp {
    let engine = Engine::spawn(Device::flex(), None);
    PosteriorApp::with_engine(engine, "cpu (burn flex), test".into(), true).unwrap()
}
