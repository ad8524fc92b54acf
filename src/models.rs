//! Where network priors are found, wherever the program is installed, and the per-user folder
//! that imported models go to (it survives upgrades).
//!
//! Folders, in the order a bare name (`Model("fashion-mnist")`) resolves:
//! 1. `POSTERIOR_LAB_MODELS`, when set (tests, custom setups);
//! 2. the installed data: `share/posterior-lab/models` beside the binary's `bin/` folder
//!    (`/usr/share/…` for the .deb, inside the portable archive, `Contents/Resources` on macOS);
//! 3. the per-user folder: `$XDG_DATA_HOME/posterior-lab/models` (default
//!    `~/.local/share/…`) on Linux, `~/Library/Application Support/posterior-lab/models` on
//!    macOS, `%APPDATA%\posterior-lab\models` on Windows;
//! 4. `models/` beside the binary (or up to three folders above it: a `cargo build` tree);
//! 5. `models/` in the working directory;
//! 6. the source tree the binary was built from (a developer's checkout).

use crate::error::{Error, Result};
use crate::priors::network::{CARD_FILE, ModelCard};
use std::path::{Path, PathBuf};

/// Where a models folder comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    Installed,
    User,
    BesideBinary,
    WorkingDirectory,
    SourceTree,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Environment => "POSTERIOR_LAB_MODELS",
            Source::Installed => "installed",
            Source::User => "user",
            Source::BesideBinary => "beside the binary",
            Source::WorkingDirectory => "working directory",
            Source::SourceTree => "source tree",
        }
    }
}

/// The per-user models folder (created on demand by [`import`]).
pub fn user_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let base = if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".local/share")))
    };
    base.map(|b| b.join("posterior-lab").join("models"))
}

/// Every folder that may hold models, in resolution order (duplicates removed).
pub fn dirs() -> Vec<(PathBuf, Source)> {
    let mut out: Vec<(PathBuf, Source)> = vec![];
    if let Some(d) = std::env::var_os("POSTERIOR_LAB_MODELS").filter(|d| !d.is_empty()) {
        out.push((PathBuf::from(d), Source::Environment));
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| std::fs::canonicalize(&e).ok().or(Some(e)));
    if let Some(prefix) = exe
        .as_ref()
        .and_then(|e| e.parent())
        .and_then(|b| b.parent())
    {
        out.push((prefix.join("share/posterior-lab/models"), Source::Installed));
        // A macOS bundle: Contents/MacOS/posterior-lab next to Contents/Resources.
        out.push((prefix.join("Resources/models"), Source::Installed));
    }
    if let Some(u) = user_dir() {
        out.push((u, Source::User));
    }
    if let Some(bin) = exe.as_ref().and_then(|e| e.parent()) {
        for a in bin.ancestors().take(4) {
            out.push((a.join("models"), Source::BesideBinary));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        out.push((cwd.join("models"), Source::WorkingDirectory));
    }
    out.push((
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"),
        Source::SourceTree,
    ));
    let mut seen: Vec<PathBuf> = vec![];
    out.retain(|(p, _)| {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    out
}

/// A model folder found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub dir: PathBuf,
    pub source: Source,
    pub card: ModelCard,
}

impl Found {
    /// One line: what it is, from its card.
    pub fn summary(&self) -> String {
        let c = &self.card;
        let [ch, h, w] = c.shape;
        let size = if c.any_size {
            format!("{ch}-channel patches, any size")
        } else {
            format!("{ch}x{h}x{w}")
        };
        let role = match c.companion_of() {
            Some(r) => format!("; {r}"),
            None => String::new(),
        };
        // The card's data note can be a paragraph: its first clause is the summary.
        let data: String = c
            .data
            .split([';', '('])
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(70)
            .collect();
        if let Some(k) = &c.checkpoint {
            let kind = match k.parameterisation {
                crate::priors::parameterisation::Parameterisation::Consistency { .. } => {
                    "consistency model"
                }
                _ => "DDPM",
            };
            let classes = k
                .network
                .num_classes
                .map(|n| format!(", {n} classes"))
                .unwrap_or_default();
            return format!(
                "{size} (larger pictures in tiles), imported {kind} ({:?}) from {}{classes}",
                k.format, k.source
            );
        }
        format!("{size}, trained {} steps on {data}{role}", c.trained_steps)
    }
}

/// The models of one folder (sub-folders with a readable card and weights), by name.
pub fn in_dir(dir: &Path, source: Source) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let card_path = p.join(CARD_FILE);
            let text = crate::files::read_text(&card_path).ok()?;
            let card = ModelCard::parse(&text, &card_path).ok()?;
            let name = p.file_name()?.to_string_lossy().to_string();
            let weights = p.join(&card.weights).is_file();
            weights.then_some(Found {
                name,
                dir: p,
                source,
                card,
            })
        })
        .collect()
}

/// Every model found, the first of each name winning (resolution order).
pub fn all() -> Vec<Found> {
    let mut out: Vec<Found> = vec![];
    for (dir, source) in dirs() {
        for f in in_dir(&dir, source) {
            if !out.iter().any(|o| o.name == f.name) {
                out.push(f);
            }
        }
    }
    out
}

/// Whether a recipe's `Model("...")` is a bare name rather than a path.
pub fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['/', '\\'])
        && s != "."
        && s != ".."
        && !s.ends_with(".mpk")
        && !s.ends_with(".bpk")
}

/// Resolves a recipe's model reference: a path relative to the recipe's folder when it exists
/// (as before), else a bare name through [`dirs`].
pub fn resolve(reference: &str, base: &Path) -> Result<PathBuf> {
    let local = crate::priors::network::resolve(&base.join(reference));
    if local.exists() || !is_bare_name(reference) {
        return Ok(local);
    }
    let searched = dirs();
    if let Some((dir, _)) = searched
        .iter()
        .find(|(dir, _)| dir.join(reference).join(CARD_FILE).is_file())
    {
        return Ok(dir.join(reference));
    }
    let searched: Vec<String> = searched
        .iter()
        .map(|(d, _)| d.display().to_string())
        .collect();
    Err(Error::invalid(
        format!("Model(\"{reference}\")"),
        format!(
            "no model of that name in {} (see `posterior-lab models`)",
            searched.join(", ")
        ),
    ))
}

/// Copies the model folder `src` into the user folder after checking it loads (card, weights
/// and their shapes); the user folder is unchanged on any failure. Returns the new folder.
pub fn import(src: &Path, device: &burn::tensor::Device) -> Result<PathBuf> {
    let user = user_dir().ok_or_else(|| {
        Error::invalid(
            "model import",
            "no per-user data folder (HOME / APPDATA is not set)",
        )
    })?;
    import_into(src, &user, device)
}

/// Converts a pretrained checkpoint into a model folder in the user folder
/// ([`crate::checkpoint`]).
pub fn import_checkpoint(req: &crate::checkpoint::ImportRequest) -> Result<PathBuf> {
    let user = user_dir().ok_or_else(|| {
        Error::invalid(
            "checkpoint import",
            "no per-user data folder (HOME / APPDATA is not set)",
        )
    })?;
    crate::checkpoint::import_into(req, &user)
}

/// [`import`] into a given folder (tests).
pub fn import_into(src: &Path, user: &Path, device: &burn::tensor::Device) -> Result<PathBuf> {
    if !src.join(CARD_FILE).is_file() {
        return Err(Error::file(
            src,
            format!("not a model folder: it has no {CARD_FILE}"),
        ));
    }
    // Loading checks the card, the weights file, every tensor's shape and finiteness.
    let (card_path, _) = crate::priors::network::locate(src)?;
    let card = ModelCard::parse(&crate::files::read_text(&card_path)?, &card_path)?;
    // A class-conditional model loads only with a class: any will do for the check.
    let class = (card.checkpoint.as_ref()).and_then(|c| c.network.num_classes.map(|_| 0));
    crate::priors::load_model(src, None, class, device)?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| is_bare_name(n))
        .ok_or_else(|| Error::file(src, "the folder needs a plain name"))?;
    let dst = user.join(&name);
    if dst.exists() {
        return Err(Error::file(
            &dst,
            "a model of that name is already in your models folder: remove it first",
        ));
    }
    std::fs::create_dir_all(user).map_err(|e| Error::file(user, format!("cannot create: {e}")))?;
    // Copied to a hidden staging folder, moved in by one rename: never half a model.
    let staging = user.join(format!(".{name}.import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let copied = (|| -> Result<()> {
        std::fs::create_dir(&staging)
            .map_err(|e| Error::file(&staging, format!("cannot create: {e}")))?;
        for file in [CARD_FILE.to_string(), card.weights.clone()] {
            let from = src.join(&file);
            std::fs::copy(&from, staging.join(&file))
                .map_err(|e| Error::file(&from, format!("cannot copy: {e}")))?;
        }
        // Optional documentation travels along.
        for extra in ["README.md", "samples.png", "train.ron"] {
            let from = src.join(extra);
            if from.is_file() {
                let _ = std::fs::copy(&from, staging.join(extra));
            }
        }
        std::fs::rename(&staging, &dst)
            .map_err(|e| Error::file(&dst, format!("cannot move in: {e}")))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    copied.map(|_| dst)
}

/// Removes a model from the user folder (only there: installed models belong to the package).
pub fn remove(found: &Found) -> Result<()> {
    if found.source != Source::User {
        return Err(Error::file(
            &found.dir,
            format!(
                "is {} ({}): only models in your own folder can be removed here",
                found.source.describe(),
                found.dir.display()
            ),
        ));
    }
    std::fs::remove_dir_all(&found.dir)
        .map_err(|e| Error::file(&found.dir, format!("cannot remove: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_names_not_paths() {
        assert!(is_bare_name("fashion-mnist"));
        assert!(!is_bare_name("../models/fashion-mnist"));
        assert!(!is_bare_name("models/x.mpk"));
        assert!(!is_bare_name(".."));
        assert!(!is_bare_name(""));
    }
}
