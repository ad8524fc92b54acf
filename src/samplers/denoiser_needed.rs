//! A consistency model alone (an imported one-step generator) is not a denoiser: only the
//! samplers that sample through its generator can use it. The check depends on a sampler's
//! parameters (noise-space Langevin's generator, `Prior`'s `distilled`), so it sits beside the
//! table's `build`, not in the samplers' static [`super::PriorSupport`].

use super::{SamplerSpec, cps};
use crate::error::{Error, Result};
use crate::problem::Problem;

/// Refuses, in one line, a sampler that would call a generator-only prior as a denoiser.
pub(super) fn check(spec: &SamplerSpec, problem: &Problem) -> Result<()> {
    if !problem.prior.generator_only() {
        return Ok(());
    }
    let reason = match spec {
        SamplerSpec::Auto(_) => return Ok(()),
        SamplerSpec::Prior(p) if p.distilled => return Ok(()),
        SamplerSpec::NoiseSpaceLangevin(p) if p.generator != cps::GeneratorChoice::Ode => {
            return Ok(());
        }
        SamplerSpec::NoiseSpaceLangevin(_) => format!(
            "generator: Ode integrates a denoiser, and {} is a one-step generator: use \
             generator: Auto or Distilled",
            problem.prior.describe()
        ),
        _ => format!(
            "{} is a one-step generator, not a denoiser: sample through it with \
             NoiseSpaceLangevin (or Prior(distilled: true)), or use it beside a denoiser prior \
             (import that prior as NAME and this model as NAME-cm)",
            problem.prior.describe()
        ),
    };
    Err(Error::Unsupported {
        sampler: spec.name().into(),
        reason,
    })
}
