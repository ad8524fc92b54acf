//! Run-time choice of the burn device.
//!
//! burn-wgpu on a hardware GPU adapter; burn's CPU backend `flex` when the only adapters are
//! software rasterisers (lavapipe, llvmpipe, WARP: ~10x slower than flex) or there is none.
//! The choice is never silent: [`Selection::notice`] says what was picked and why.

use crate::error::{Error, Result};
use burn::tensor::{Device, DeviceKind};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    /// burn-wgpu (Vulkan / Metal / DX12).
    Wgpu,
    /// burn's `flex` CPU backend.
    Cpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cpu => "cpu",
        })
    }
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "wgpu" | "gpu" => Ok(BackendKind::Wgpu),
            "cpu" | "flex" => Ok(BackendKind::Cpu),
            other => Err(Error::invalid(
                "--backend",
                format!("unknown backend '{other}' (use wgpu or cpu)"),
            )),
        }
    }
}

/// A wgpu adapter as seen at start-up.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub api: String,
    pub software: bool,
    /// How burn addresses it: each device type counts from zero on its own.
    pub kind: DeviceKind,
}

/// The device in use and a human-readable account of the choice.
#[derive(Clone)]
pub struct Selection {
    pub kind: BackendKind,
    pub device: Device,
    /// e.g. "wgpu (NVIDIA GeForce RTX 4070, Vulkan)" or "cpu (flex)".
    pub description: String,
    /// One line for the user: what was picked and why.
    pub notice: String,
}

impl fmt::Debug for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selection")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .finish()
    }
}

/// Lists the wgpu adapters of this machine (cheap: no device is opened). Only the primary
/// APIs (Vulkan, Metal, DX12), which are what burn's kernels run on; probing GL would also
/// print windowing-system noise on headless machines.
pub fn adapters() -> Vec<AdapterSummary> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends &= wgpu::Backends::PRIMARY;
    let list = quiet_stderr(|| {
        let instance = wgpu::Instance::new(desc);
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
    });
    let infos: Vec<wgpu::AdapterInfo> = list.iter().map(|a| a.get_info()).collect();
    // burn settles on Vulkan wherever Vulkan exists (else the platform's API) and numbers the
    // adapters of that API only: list those, so an index means the same adapter to both.
    let api = if infos.iter().any(|i| i.backend == wgpu::Backend::Vulkan) {
        Some(wgpu::Backend::Vulkan)
    } else {
        infos.first().map(|i| i.backend)
    };
    let mut next = [0usize; 5];
    infos
        .into_iter()
        .filter(|i| Some(i.backend) == api)
        .map(|info| {
            let (slot, make): (usize, fn(usize) -> DeviceKind) = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => (0, DeviceKind::DiscreteGpu),
                wgpu::DeviceType::IntegratedGpu => (1, DeviceKind::IntegratedGpu),
                wgpu::DeviceType::VirtualGpu => (2, DeviceKind::VirtualGpu),
                wgpu::DeviceType::Cpu => (3, |_| DeviceKind::Cpu),
                wgpu::DeviceType::Other => (4, |_| DeviceKind::DefaultDevice),
            };
            let kind = make(next[slot]);
            next[slot] += 1;
            AdapterSummary {
                name: info.name.clone(),
                api: format!("{:?}", info.backend),
                software: info.device_type == wgpu::DeviceType::Cpu,
                kind,
            }
        })
        .collect()
}

/// What `--list-devices` prints: every adapter with its index, and the CPU backend.
pub fn list_devices() -> String {
    let found = adapters();
    let default = found.iter().position(|a| !a.software);
    let mut out = String::new();
    for (i, a) in found.iter().enumerate() {
        out.push_str(&format!(
            "{i}: {} ({}, {}){}\n",
            a.name,
            a.api,
            if a.software { "software" } else { "hardware" },
            if Some(i) == default { " [default]" } else { "" }
        ));
    }
    out.push_str(&format!(
        "cpu: burn flex (the CPU backend){}\n",
        if default.is_none() { " [default]" } else { "" }
    ));
    out
}

/// Picks the device a user named: `cpu`, an index from [`list_devices`], or part of an
/// adapter's name (case-insensitive).
pub fn select_named(name: &str) -> Result<Selection> {
    let want = name.trim();
    if matches!(want.to_ascii_lowercase().as_str(), "cpu" | "flex") {
        return Ok(cpu());
    }
    let found = adapters();
    let pick = match want.parse::<usize>() {
        Ok(i) => found.get(i),
        Err(_) => {
            let lower = want.to_lowercase();
            found
                .iter()
                .find(|a| a.name.to_lowercase().contains(&lower))
        }
    };
    let Some(adapter) = pick else {
        let names: Vec<String> = found
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i}: {}", a.name))
            .chain(std::iter::once("cpu".to_string()))
            .collect();
        return Err(Error::invalid(
            "--device",
            format!("no device '{want}'; available: {}", names.join(", ")),
        ));
    };
    let mut sel = wgpu_selection(adapter)?;
    sel.notice = format!(
        "backend: {}, as chosen with --device {want}",
        sel.description
    );
    Ok(sel)
}

/// The device for a command: `--device` when given (checked against `--backend`), else
/// [`select`].
pub fn choose(backend: Option<BackendKind>, device: Option<&str>) -> Result<Selection> {
    let Some(name) = device else {
        return select(backend);
    };
    let sel = select_named(name)?;
    if let Some(kind) = backend
        && kind != sel.kind
    {
        return Err(Error::invalid(
            "--device",
            format!(
                "'{name}' is a {} device but --backend {kind} was asked for",
                sel.kind
            ),
        ));
    }
    Ok(sel)
}

/// The CPU device (burn flex): always available.
pub fn cpu() -> Selection {
    Selection {
        kind: BackendKind::Cpu,
        device: Device::flex(),
        description: "cpu (burn flex)".into(),
        notice: "backend: cpu (burn flex), as requested".into(),
    }
}

/// Picks the device: `requested` overrides; otherwise wgpu on a hardware adapter, else cpu.
pub fn select(requested: Option<BackendKind>) -> Result<Selection> {
    if requested == Some(BackendKind::Cpu) {
        return Ok(cpu());
    }
    let found = adapters();
    let hardware = found.iter().find(|a| !a.software);
    match requested {
        Some(BackendKind::Cpu) => Ok(cpu()),
        Some(BackendKind::Wgpu) => {
            let Some(adapter) = hardware.or(found.first()) else {
                return Err(Error::Backend(
                    "--backend wgpu: no wgpu adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers)".into(),
                ));
            };
            let mut sel = wgpu_selection(adapter)?;
            sel.notice = if adapter.software {
                format!(
                    "backend: wgpu on a software adapter ({}), as requested; the cpu backend is usually ~10x faster here",
                    adapter.name
                )
            } else {
                format!("backend: {}, as requested", sel.description)
            };
            Ok(sel)
        }
        None => match hardware {
            Some(adapter) => {
                let mut sel = wgpu_selection(adapter)?;
                sel.notice = format!(
                    "backend: {} (hardware GPU found; --backend cpu overrides)",
                    sel.description
                );
                Ok(sel)
            }
            None => {
                let why = match found.first() {
                    Some(a) => format!("only a software adapter ({}) was found", a.name),
                    None => "no GPU adapter was found".into(),
                };
                let mut sel = cpu();
                sel.notice =
                    format!("backend: cpu (burn flex), because {why}; --backend wgpu overrides");
                Ok(sel)
            }
        },
    }
}

fn wgpu_selection(adapter: &AdapterSummary) -> Result<Selection> {
    let device = Device::wgpu(adapter.kind.clone());
    // Open the device now (quietly: see `quiet_stderr`), so a driver that fails to start is
    // reported here as an error rather than as a panic in the middle of a run.
    let probe = device.clone();
    let opened = quiet_stderr(|| {
        std::panic::catch_unwind(move || {
            burn::tensor::Tensor::<1>::zeros([1], &probe)
                .into_data()
                .num_elements()
        })
    });
    if opened.is_err() {
        return Err(Error::Backend(format!(
            "wgpu could not open {} ({})",
            adapter.name, adapter.api
        )));
    }
    Ok(Selection {
        kind: BackendKind::Wgpu,
        device,
        description: format!("wgpu ({}, {})", adapter.name, adapter.api),
        notice: String::new(),
    })
}

/// Runs `f` with the process's stderr pointed at /dev/null. Probing Vulkan drivers on a headless
/// machine makes libwayland print "error: XDG_RUNTIME_DIR is invalid…" lines that are not errors
/// of ours and would drown the one message a failing command prints.
/// Calls on several threads take turns: each restores the descriptor it saved, so two at once
/// could leave stderr pointed at /dev/null for good. Not re-entrant.
#[cfg(unix)]
pub fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = std::io::stderr().flush();
    // SAFETY: plain POSIX descriptor calls on fd 2 and descriptors opened here; every
    // descriptor is checked and the original stderr is restored before returning.
    unsafe {
        let saved = libc::dup(2);
        if saved < 0 {
            return f();
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null < 0 {
            libc::close(saved);
            return f();
        }
        libc::dup2(null, 2);
        libc::close(null);
        let out = f();
        libc::dup2(saved, 2);
        libc::close(saved);
        out
    }
}

#[cfg(not(unix))]
pub fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    f()
}
