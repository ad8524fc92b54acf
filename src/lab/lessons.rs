//! What the lab says about each sampler: which arrow is its own and what its known bias looks
//! like in the plane (read beside the particles and the exact cloud). Written in the glyphs the
//! window's fonts have (x0-hat, A^T).

use super::fields::Field;

pub struct Lesson {
    /// The sampler's own guidance arrow, when it follows one.
    pub arrow: Option<Field>,
    pub text: &'static str,
}

/// The lesson for the sampler called `name` in recipes.
pub fn lesson(name: &str) -> Lesson {
    let (arrow, text) = match name {
        "Dps" => (
            Some(Field::DpsGuidance),
            "DPS pushes x_t along the gradient of log N(y; A x0-hat(x_t), σ_y²): the likelihood \
             of the denoised guess, as if x0-hat were certain. Compare its arrows with the exact \
             guidance: at large σ they are far too long (x0-hat is a blurry average, yet it is \
             treated as exact), so particles commit to whichever mode x0-hat points at first. Its \
             step is scaled by ζ/|y − A x0-hat|, not by the arrow's length. Expect mode weights off \
             and a posterior narrower than the exact cloud.",
        ),
        "PiGdm" => (
            Some(Field::PigdmGuidance),
            "PiGDM widens DPS's likelihood by r²A A^T, r² = σ²/(1 + σ²): the spread a unit-variance \
             prior would leave around x0-hat. Its arrows are shorter than DPS's at large σ and equal \
             the exact ones when the prior really is one unit Gaussian; with tight, separated \
             modes r² overstates the spread inside a mode and understates it between modes.",
        ),
        "Eps" => (
            Some(Field::ExactGuidance),
            "EPS with this mixture uses the exact posterior denoiser, so its drift is the exact \
             posterior score (blue) and its guidance is the exact guidance (green): particles \
             end on the exact cloud, up to the solver's discretisation. A reference for the \
             others.",
        ),
        "Almc" => (
            Some(Field::AlmcGuidance),
            "ALMC applies the whole likelihood, unannealed, from the first step (its arrow), and \
             anneals only the prior: phase one is Langevin on N(0, I)·p(y | x), phase two lets \
             the prior sharpen. With an exact prior score its path targets are exact, so its \
             errors are Langevin's: too few steps leave particles between modes, and mode \
             weights settle only as fast as particles can cross.",
        ),
        "Ald" => (
            Some(Field::AldGuidance),
            "Annealed Langevin adds A^T(y − A x)/(σ_y² + σ²) to the prior score: the measurement \
             applied to the noisy x itself, with its variance widened by σ². Each level's target \
             is not the noised posterior, so mode weights are only as right as mixing at the \
             last levels makes them; compare its arrows with the exact guidance at large σ.",
        ),
        "Daps" => (
            None,
            "DAPS follows no guidance arrow: at each level it solves the prior's ODE to a clean \
             guess, runs Langevin in x0-space on N(x0; x0-hat, σ²)·p(y | x0), and re-noises. The \
             decoupling lets particles jump between modes at large σ; how well the weights come \
             out depends on how well the few Langevin steps per level mix (watch the mode-error \
             plot).",
        ),
        "DiffPir" => (
            None,
            "DiffPIR follows no guidance arrow: each step denoises, pulls x0-hat toward the \
             measurement by a proximal step, and re-noises. The step weighs the denoised guess by \
             only λ/σ², so the pull is strongest at large σ: particles land on the measurement \
             early, and the mode each ends in is decided by the denoiser near the line; compare \
             the mode weights with the exact cloud.",
        ),
        "Ddrm" => (
            None,
            "DDRM follows no guidance arrow: it works in the operator's SVD coordinates, copying \
             the measured coordinate from y (with noise) and letting the prior fill the unseen \
             one. Along the measured direction its spread is σ_y's; across it, the prior's.",
        ),
        "NoiseSpaceLangevin" => (
            None,
            "Noise-space Langevin moves a latent z, not x: x = Φ(z) is the prior's deterministic \
             generator (here its probability-flow ODE). Particles shown as x0-hat are Φ(z); their \
             cloud is as good as Langevin mixes in z, where the modes of x are regions of z.",
        ),
        "Exact" => (
            None,
            "Exact draws from the closed-form posterior: one step, no arrows. Its accuracy \
             curve sits at the exact floor — the spread between two exact sets of this size.",
        ),
        "Prior" => (
            None,
            "Prior samples, ignoring y: the particles should match the prior, not the \
             posterior; their distance to the exact posterior shows how much y tells.",
        ),
        _ => (None, ""),
    };
    Lesson { arrow, text }
}
