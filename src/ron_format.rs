//! The one RON dialect of every file the program reads and writes (recipes, mixture files,
//! model cards, training configs and states): `Dps(steps: 500)` rather than
//! `Dps((steps: 500))`, and optional values written bare (`eps: 0.1`, `Some(0.1)` also read).

use ron::extensions::Extensions;

/// The reader (and writer) options.
pub fn options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(Extensions::UNWRAP_VARIANT_NEWTYPES)
        .with_default_extension(Extensions::IMPLICIT_SOME)
}

/// A value as pretty RON in the same dialect.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    let pretty = ron::ser::PrettyConfig::default()
        .extensions(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME);
    options()
        .to_string_pretty(value, pretty)
        .map_err(|e| e.to_string())
}

/// A value as one line of RON in the same dialect (a sampler in a text field).
pub fn to_line<T: serde::Serialize>(value: &T) -> Result<String, String> {
    options().to_string(value).map_err(|e| e.to_string())
}
