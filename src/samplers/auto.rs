//! `Auto`: the best tested preset for the prior and the operator, at a chosen speed.
//!
//! The choice is a table (below, and in the README's "Which sampler" section), filled from
//! measurements: docs/nfe-table.md (whole-image Fashion-MNIST priors: quality against NFE) and
//! docs/photo-table.md (the photo prior at 256² on held-out photos, `posterior-lab bench
//! --photo`). `Best` is the highest PSNR of the mean measured, `Balanced` stays within a few
//! tenths of a dB of it at a fraction of the time, `Fast` is the quickest that still clearly
//! beats the classical baseline. A Gaussian mixture always gets `Exact`.

use super::{ChainState, Sampler, SamplerSpec};
use crate::error::{Error, Result};
use crate::operators::Task;
use crate::problem::Problem;
use serde::{Deserialize, Serialize};

pub const INFO: super::SamplerInfo = super::SamplerInfo {
    name: "Auto",
    preset: "Auto",
    help: "The best tested preset for this prior and degradation (see the README's table). Field: speed (Fast, Balanced, Best; default Balanced).",
    priors: super::PriorSupport::Any,
    measurements: super::MeasurementSupport::Any,
    anneals: true,
    patch_preset: None,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Speed {
    Fast,
    #[default]
    Balanced,
    Best,
}

/// What the run is for: the best posterior mean (the restoration to keep), or chains that
/// each look like a photo (to see how different the plausible restorations are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Goal {
    #[default]
    Mean,
    Diverse,
}

impl Goal {
    fn is_mean(&self) -> bool {
        *self == Goal::Mean
    }
    pub fn label(self) -> &'static str {
        match self {
            Goal::Mean => "best mean",
            Goal::Diverse => "diverse samples",
        }
    }
}

/// `Auto`, `Auto(speed: Fast)`, `Auto(goal: Diverse)`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoParams {
    pub speed: Speed,
    #[serde(skip_serializing_if = "Goal::is_mean")]
    pub goal: Goal,
}

/// The recipe line of these fields, defaults left out (`Auto`, `Auto(goal: Diverse)`).
pub fn line(params: &AutoParams) -> String {
    let mut fields = vec![];
    if params.speed != Speed::Balanced {
        fields.push(format!("speed: {:?}", params.speed));
    }
    if params.goal != Goal::Mean {
        fields.push(format!("goal: {:?}", params.goal));
    }
    if fields.is_empty() {
        "Auto".into()
    } else {
        format!("Auto({})", fields.join(", "))
    }
}

/// What kind of prior the table is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorKind {
    Mixture,
    /// A whole-image network with an EPS fine-tune for this operator and σ_y.
    NetworkWithEps,
    /// A patch prior (any size, run in tiles) with an EPS fine-tune for this operator and σ_y.
    /// Its own row is super-resolution; elsewhere it reads the `Patch`, then the `Network` rows
    /// (on scratches the fine-tunes lose to Gaussian interpolation: docs/photo-table.md).
    PatchWithEps,
    /// A patch prior without a fine-tune for the problem: its own rows, else the `Network` ones.
    Patch,
    Network,
    /// A consistency model alone (an imported one-step generator, no denoiser).
    Generator,
}

/// One row of the table: (fast, balanced, best) sampler lines.
pub struct Row {
    pub prior: PriorKind,
    pub task: Option<Task>,
    pub lines: [&'static str; 3],
}

/// A consistency model alone: only noise-space Langevin samples through it (the seed paper's
/// own setting, its step counts; not measured here: no trained checkpoint ships). The same lines
/// for the best mean and for diverse samples.
const GENERATOR_LINES: [&str; 3] = [
    "NoiseSpaceLangevin(steps: 50)",
    "NoiseSpaceLangevin(steps: 100)",
    "NoiseSpaceLangevin(steps: 200)",
];

/// Photos with holes (the measurements in the comment above `TABLE`'s row).
const PATCH_INPAINT_LINES: [&str; 3] = [
    "Ddrm(steps: 8, warm: 0.8, sigma_min: 0.02)",
    "Ddrm(steps: 12, warm: 0.8, sigma_min: 0.02)",
    "Ddrm(steps: 50, warm: 0.5)",
];

/// Every table's first rows: a mixture's exact posterior, a generator's noise-space Langevin.
const MIXTURE_ROW: Row = Row {
    prior: PriorKind::Mixture,
    task: None,
    lines: ["Exact", "Exact", "Exact"],
};
const GENERATOR_ROW: Row = Row {
    prior: PriorKind::Generator,
    task: None,
    lines: GENERATOR_LINES,
};

/// Read top to bottom; the first row whose prior kind matches and whose task matches (None:
/// any task) is taken.
pub const TABLE: &[Row] = &[
    MIXTURE_ROW,
    GENERATOR_ROW,
    Row {
        prior: PriorKind::NetworkWithEps,
        task: None,
        lines: ["Eps(steps: 10)", "Eps(steps: 20)", "Eps(steps: 20)"],
    },
    // Photo super-resolution with the prior's EPS fine-tune: on nine held-out photos at 256²
    // (docs/photo-table.md, "Super-resolution with a GPU fine-tune") `photo64-eps` at 5 steps
    // gains +1.61 dB over bicubic on average (2×; DDRM 50 with `photo64` alone +1.29, in 18×
    // the time) and 4, 7, 10 and 15 steps gain less; `photo-eps` at 5 steps +0.93 against
    // DDRM 50's +1.06 with `photo` (equal or better on 8 of 9, in a tenth of the time). Fewer
    // than 4 steps fail on smooth photos, more add single-sample detail to the mean: one line
    // for every speed.
    Row {
        prior: PriorKind::PatchWithEps,
        task: Some(Task::SuperResolution),
        lines: ["Eps(steps: 5)", "Eps(steps: 5)", "Eps(steps: 5)"],
    },
    // Photos with holes: DDRM started from the interpolation of the holes (`warm`). A patch
    // prior cannot see a hole's colour at high σ and its guess stays; on nine held-out photos
    // at 256² (docs/photo-table.md) DDRM 50 from noise gains +1.68 dB over interpolation on
    // average (−0.77 and −0.11 on two of them), the warm start at σ 0.5 +2.84 at 30 steps and
    // +2.92 at 50. Starting at 0.8 and ending at σ_min 0.02 (σ_y: below it only the observed
    // pixels are refined) gains +2.50 in 8 steps and +2.65 in 12 (every photo ≥ +1.30): on a
    // 4-megapixel photo those 12 steps are what fits in minutes.
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Inpaint),
        lines: PATCH_INPAINT_LINES,
    },
    // The photo prior at 256² on a held-out photo, 4 chains (docs/photo-table.md): DDRM's
    // closed-form SVD steps beat ΠGDM everywhere but deblurring; fewer steps than the rows say
    // fall below the classical baseline on scratches (DDRM 20: -0.3 dB).
    Row {
        prior: PriorKind::Network,
        task: Some(Task::Denoise),
        lines: ["Ddrm(steps: 20)", "Ddrm(steps: 30)", "Ddrm(steps: 50)"],
    },
    Row {
        prior: PriorKind::Network,
        task: Some(Task::Inpaint),
        lines: ["Ddrm(steps: 30)", "Ddrm(steps: 50)", "Ddrm(steps: 100)"],
    },
    Row {
        prior: PriorKind::Network,
        task: Some(Task::SuperResolution),
        lines: ["Ddrm(steps: 20)", "Ddrm(steps: 50)", "Ddrm(steps: 100)"],
    },
    Row {
        prior: PriorKind::Network,
        task: Some(Task::Deblur),
        lines: ["Ddrm(steps: 20)", "PiGdm(steps: 20)", "PiGdm(steps: 50)"],
    },
    Row {
        prior: PriorKind::Network,
        task: Some(Task::Colourise),
        lines: ["Ddrm(steps: 30)", "Ddrm(steps: 100)", "Ddrm(steps: 100)"],
    },
    Row {
        prior: PriorKind::Network,
        task: None,
        lines: ["PiGdm(steps: 20)", "PiGdm(steps: 50)", "PiGdm(steps: 100)"],
    },
];

/// `Auto(goal: Diverse)`: chains that each look like a plausible picture and a wider spread,
/// read as `TABLE` is. The mean table's photo lines start from the interpolated fill at σ 0.8
/// and stop early: their chains in a hole are as smooth as their mean and nearly identical. On
/// three held-out photos at 256² (docs/photo-table.md, "Diverse samples") DDRM with η 0.5
/// from the fill at σ 1.5 gives chains with 1.5× the fine detail in the holes (0.40-0.45 of
/// the truth's Laplacian energy, against 0.28-0.30), about twice the spread, and a mean
/// 0.3 dB below the best one's; from noise the chains differ more but two of three means fall
/// below interpolation (wrong colours in the blots), and annealed Langevin takes 6× the time
/// for a worse mean. On whole-image priors the EPS fine-tune's chains are already the best
/// calibrated; without one, noise-space Langevin's (docs/calibration-table.md).
pub const DIVERSE: &[Row] = &[
    MIXTURE_ROW,
    GENERATOR_ROW,
    Row {
        prior: PriorKind::NetworkWithEps,
        task: None,
        lines: ["Eps(steps: 10)", "Eps(steps: 20)", "Eps(steps: 20)"],
    },
    // DDRM with η 0.5 deblurs photos into noise (−7.9 dB under Wiener on coffee; from σ 1.5
    // −11.5): DiffPIR's chains there have 1.6× the best mean's detail and spread, and a mean
    // +0.3 dB above it.
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Deblur),
        lines: [
            "DiffPir(steps: 50)",
            "DiffPir(steps: 50)",
            "DiffPir(steps: 50)",
        ],
    },
    Row {
        prior: PriorKind::Patch,
        task: None,
        lines: [
            "Ddrm(steps: 50, eta: 0.5, warm: 1.5)",
            "Ddrm(steps: 50, eta: 0.5, warm: 1.5)",
            "Ddrm(steps: 50, eta: 0.5, warm: 1.5)",
        ],
    },
    Row {
        prior: PriorKind::Network,
        task: None,
        lines: [
            "NoiseSpaceLangevin(steps: 100)",
            "NoiseSpaceLangevin(steps: 100)",
            "NoiseSpaceLangevin(steps: 100)",
        ],
    },
];

/// Measurements beyond linear-Gaussian (JPEG, clipping, phase retrieval, magnitudes, photon
/// noise): the samplers that take any differentiable A, and for photon noise through a
/// diagonal A (denoising, inpainting: whitenable) DDRM through its Gaussian approximation. Read as `TABLE` is, for both goals. A Gaussian mixture gets
/// `Exact` in the plane (its posterior on a grid); in more dimensions it reads the `Network`
/// rows.
pub const GENERAL: &[Row] = &[
    MIXTURE_ROW,
    GENERATOR_ROW,
    // The photo prior at 256² on held-out photos, 4 chains (docs/nonlinear-table.md). DPS
    // (100 steps: −4.7 dB under the decoded JPEG) and DAPS (50: −1.2) lose to DiffPIR with
    // its gradient data step; started from the decoded JPEG at σ 0.15 (`warm`), 10 steps
    // gain +0.96 and +1.22 dB at quality 10, as much as 20.
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Dejpeg),
        lines: [
            "DiffPir(steps: 10, warm: 0.15)",
            "DiffPir(steps: 10, warm: 0.15)",
            "DiffPir(steps: 20, warm: 0.1)",
        ],
    },
    // Burnt-out highlights: from noise (y is no start: its highlights are wrong), 20 steps
    // gain +1.0, +7.0 and +7.8 dB over y on three photos, 50 steps +2.8, +2.9 and +6.1, 100
    // steps +2.9 and +3.4: what the prior guesses in the burnt-out region decides, and the
    // shorter run guesses less.
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Declip),
        lines: [
            "DiffPir(steps: 20)",
            "DiffPir(steps: 20)",
            "DiffPir(steps: 20)",
        ],
    },
    // Photon noise (peak 20) on photos: DDRM through its Gaussian approximation (y's own
    // variance, whitened) at 20 steps gains +2.3 dB over the best Gaussian filter on one photo
    // and loses 6.5 and 3.2 on two smooth ones, where the filter's 3-pixel blur is hard to
    // beat at this noise; DiffPIR with the Poisson likelihood (from y at σ 0.3) +1.7, −7.4 and
    // −5.8; 30 and 50 DDRM steps, and DiffPIR from σ 0.5 or from noise, do worse. The best
    // measured, not a good one (docs/nonlinear-table.md).
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Denoise),
        lines: ["Ddrm(steps: 20)", "Ddrm(steps: 20)", "Ddrm(steps: 20)"],
    },
    // Photon noise with holes: the linear table's warm-started DDRM, through the same
    // approximation (not measured with photon noise).
    Row {
        prior: PriorKind::Patch,
        task: Some(Task::Inpaint),
        lines: PATCH_INPAINT_LINES,
    },
    // Other measurements on photos (phase retrieval, magnitudes): not measured.
    Row {
        prior: PriorKind::Patch,
        task: None,
        lines: [
            "DiffPir(steps: 20)",
            "DiffPir(steps: 50)",
            "DiffPir(steps: 100)",
        ],
    },
    // Fashion-MNIST phase retrieval (oversample 2, σ_y 0.05; four held-out images, 8 chains;
    // `bench --nonlinear`): DAPS's mean 21.7 dB at 50 steps and 21.4 at 100, whose
    // residual-selected chain (20.6) is also the best of any line; DPS 200 and 500: means 18.8
    // and 17.7.
    Row {
        prior: PriorKind::Network,
        task: Some(Task::PhaseRetrieval),
        lines: ["Daps(steps: 50)", "Daps(steps: 50)", "Daps(steps: 100)"],
    },
    // Other measurements on whole-image networks: not measured.
    Row {
        prior: PriorKind::Network,
        task: None,
        lines: ["Dps(steps: 100)", "Dps(steps: 200)", "Dps(steps: 500)"],
    },
];

impl PriorKind {
    /// A network prior of a patch (`any_size`) or a whole image, with or without an EPS
    /// fine-tune that matches the problem.
    pub fn of_network(any_size: bool, fine_tune: bool) -> Self {
        match (any_size, fine_tune) {
            (true, true) => Self::PatchWithEps,
            (true, false) => Self::Patch,
            (false, true) => Self::NetworkWithEps,
            (false, false) => Self::Network,
        }
    }
}

/// The prior kind of a problem, as the table reads it.
pub fn prior_kind(problem: &Problem) -> PriorKind {
    if problem.prior.gmm().is_some() {
        return PriorKind::Mixture;
    }
    let fine_tune = (problem.prior)
        .eps_denoiser(problem.operator.as_ref(), problem.sigma_y)
        .is_some();
    if problem.prior.generator_only() {
        return PriorKind::Generator;
    }
    PriorKind::of_network(problem.prior.any_size(), fine_tune)
}

/// The sampler line `Auto` picks for this problem.
pub fn choose(params: &AutoParams, problem: &Problem) -> &'static str {
    let task = problem.operator.task();
    if problem.is_linear_gaussian() {
        choose_for(params, prior_kind(problem), task)
    } else {
        choose_general(params, prior_kind(problem), task, problem.dim() == 2)
    }
}

/// The line for a measurement beyond linear-Gaussian ([`GENERAL`]); `plane`: x has two values.
pub fn choose_general(
    params: &AutoParams,
    prior: PriorKind,
    task: Task,
    plane: bool,
) -> &'static str {
    let prior = match prior {
        PriorKind::Mixture if !plane => PriorKind::Network,
        PriorKind::PatchWithEps => PriorKind::Patch,
        PriorKind::NetworkWithEps => PriorKind::Network,
        other => other,
    };
    let find = |kind: PriorKind| {
        GENERAL
            .iter()
            .find(|r| r.prior == kind && r.task.is_none_or(|t| t == task))
    };
    let row = find(prior).or_else(|| find(PriorKind::Network));
    row.map_or("Dps(steps: 200)", |r| r.lines[speed_index(params.speed)])
}

fn speed_index(speed: Speed) -> usize {
    match speed {
        Speed::Fast => 0,
        Speed::Balanced => 1,
        Speed::Best => 2,
    }
}

pub fn choose_for(params: &AutoParams, prior: PriorKind, task: Task) -> &'static str {
    let table = match params.goal {
        Goal::Mean => TABLE,
        Goal::Diverse => DIVERSE,
    };
    let find = |kind: PriorKind| {
        table
            .iter()
            .find(|r| r.prior == kind && r.task.is_none_or(|t| t == task))
    };
    let row = match prior {
        PriorKind::PatchWithEps => find(prior)
            .or_else(|| find(PriorKind::Patch))
            .or_else(|| find(PriorKind::Network)),
        PriorKind::Patch => find(prior).or_else(|| find(PriorKind::Network)),
        PriorKind::NetworkWithEps => find(prior).or_else(|| find(PriorKind::Network)),
        _ => find(prior),
    };
    // Both tables end with a catch-all row for every prior kind.
    row.map_or("PiGdm(steps: 50)", |r| r.lines[speed_index(params.speed)])
}

/// The chosen sampler, run as itself; it says what was chosen and why.
pub struct AutoSampler {
    inner: Box<dyn Sampler>,
    line: &'static str,
    detail: String,
}

impl AutoSampler {
    pub fn new(params: AutoParams, problem: &Problem, chains: usize, seed: u64) -> Result<Self> {
        let line = choose(&params, problem);
        let spec = super::parse(line)
            .map_err(|e| Error::invalid("Auto", format!("table line {line}: {e}")))?;
        if matches!(spec, SamplerSpec::Auto(_)) {
            return Err(Error::invalid("Auto", "the table cannot name Auto"));
        }
        let inner = super::build(&spec, problem, chains, seed)?;
        let goal = match params.goal {
            Goal::Mean => String::new(),
            Goal::Diverse => ", goal: Diverse".into(),
        };
        let detail = format!(
            "Auto(speed: {:?}{goal}) chose {line} for {} with {}",
            params.speed,
            problem.operator.task().label(),
            match prior_kind(problem) {
                PriorKind::Mixture => "a Gaussian mixture",
                PriorKind::NetworkWithEps => "a network and its EPS fine-tune",
                PriorKind::PatchWithEps => "a patch prior and its EPS fine-tune",
                PriorKind::Patch => "a patch prior",
                PriorKind::Network => "a network",
                PriorKind::Generator => "a one-step generator",
            }
        );
        Ok(Self {
            inner,
            line,
            detail,
        })
    }

    /// The sampler line that was chosen.
    pub fn chosen(&self) -> &'static str {
        self.line
    }
}

impl Sampler for AutoSampler {
    fn info(&self) -> &'static super::SamplerInfo {
        self.inner.info()
    }
    fn step(&mut self, problem: &Problem) -> Result<()> {
        self.inner.step(problem)
    }
    fn state(&self) -> &ChainState {
        self.inner.state()
    }
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
    /// What was chosen, and what the chosen sampler says now (its share of work grows as it
    /// runs).
    fn detail(&self) -> Option<String> {
        Some(match self.inner.detail() {
            Some(d) => format!("{}; {d}", self.detail),
            None => self.detail.clone(),
        })
    }
    fn samples(&self) -> burn::tensor::Tensor<4> {
        self.inner.samples()
    }
}

/// The sampler line an `Auto` run's detail names ("Auto(speed: …) chose LINE for …").
pub fn chosen_in(detail: &str) -> Option<&str> {
    let rest = detail.strip_prefix("Auto(")?.split(" chose ").nth(1)?;
    rest.split(" for ").next()
}

/// Lets a recipe write the bare word `Auto` (as it writes `Exact`): RON reads a variant with
/// fields only in parentheses, so `Auto` standing as a value becomes `Auto()`.
pub fn bare_auto_to_call(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut last = 0;
    let mut from = 0;
    while let Some(pos) = text[from..].find("Auto").map(|p| p + from) {
        from = pos + 4;
        let before = text[..pos].trim_end();
        let starts_value = before.is_empty() || before.ends_with(':');
        let after = text[pos + 4..].trim_start();
        let ident_ends = bytes
            .get(pos + 4)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
        if starts_value && ident_ends && !after.starts_with('(') {
            out.push_str(&text[last..pos + 4]);
            out.push_str("()");
            last = pos + 4;
        }
    }
    if last == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
#[path = "auto_tests.rs"]
mod tests;
