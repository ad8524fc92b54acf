//! What the next run is made of: the prior, the working picture, and the recipe built from the
//! panel's choices (or the recipe text as written).

use super::catalog::PriorEntry;
use super::loader::{LoadRequest, Loaded};
use super::{Mode, PosteriorApp, catalog};
use crate::error::{Error, Result};
use crate::lab::LabScene;
use crate::priors::PriorSpec;
use crate::recipe::Recipe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl PosteriorApp {
    /// Opens a recipe (a dropped `.ron` file): in the recipe editor, and in the 2-D lab when
    /// its prior is a 2-D mixture. A bad recipe is reported, nothing else changes.
    pub fn open_recipe(&mut self, path: &Path) {
        if let Err(e) = self.load_recipe_file(path) {
            self.toasts.error(e.to_string());
        }
    }

    pub(super) fn load_recipe_file(&mut self, path: &Path) -> Result<()> {
        let text = crate::files::read_text(path)?;
        let recipe = Recipe::parse(&text)
            .map_err(|e| Error::file(path, format!("not a valid recipe: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let plane = recipe.shape == (1, 1, 2) && matches!(recipe.prior, PriorSpec::Gmm(_));
        let linear = recipe.operator.is_linear() && recipe.noise_model.is_gaussian();
        if plane && linear {
            // A 2-D mixture: the lab is where it can be seen.
            self.open_in_lab(recipe, &base)
                .map_err(|e| Error::file(path, e.to_string()))?;
        } else if plane {
            self.toasts.note(
                "The 2-D lab shows linear measurements with Gaussian noise: this recipe runs \
                 here (Exact draws from its posterior on a grid)",
            );
        }
        self.mode = Mode::Recipe { text, base };
        Ok(())
    }

    /// Opens the 2-D lab on a recipe's mixture, operator and y, running its sampler.
    fn open_in_lab(&mut self, recipe: Recipe, base: &Path) -> Result<()> {
        let sampler = crate::ron_format::to_line(&recipe.sampler)
            .map_err(|e| Error::invalid("sampler", e))?;
        let (chains, seed) = (recipe.chains, recipe.seed);
        let loaded = crate::recipe::load_recipe(recipe, base, &burn::tensor::Device::flex())?;
        let scene = LabScene::from_problem(&loaded.problem)?;
        self.lab.open_scene(scene, sampler, chains, seed);
        self.prefs.tab = super::toolbar::CentralTab::Lab;
        Ok(())
    }

    pub fn prior(&self) -> Option<&PriorEntry> {
        self.priors
            .iter()
            .find(|p| p.name == self.setup.prior)
            .or(self.priors.first())
    }

    /// Asks for the chosen picture in the prior's working shape; it is read and decoded off
    /// the UI thread and replaces the shown one when it arrives ([`Self::poll_image`]).
    pub fn reload_image(&mut self) {
        let Some(prior) = self.prior().cloned() else {
            self.image = None;
            return;
        };
        self.loader.request(LoadRequest {
            name: self.setup.image.clone(),
            shape: prior.shape,
            any_size: prior.any_size,
            working_side: self.working_side,
        });
        if self.deterministic {
            // Tests see the picture at once, as they see the preview.
            if let Some(done) = self.loader.wait(std::time::Duration::from_secs(20)) {
                self.image_loaded(done);
            }
        }
    }

    /// Takes the picture the loader finished, if any.
    pub(super) fn poll_image(&mut self) {
        if let Some(done) = self.loader.take() {
            self.image_loaded(done);
        }
    }

    fn image_loaded(&mut self, done: Loaded) {
        match done.result {
            Ok(img) => {
                if img.shrunk_to_grey && self.switch_to_photo_prior() {
                    return;
                }
                self.image = Some(Arc::new(img));
                self.loader.shown = Some((done.id, done.name));
            }
            Err(e) => {
                self.toasts.error(e);
                // Back to the picture shown before, or the prior's own gallery picture.
                let back = (self.loader.shown.clone())
                    .map(|(_, n)| n)
                    .filter(|n| *n != done.name);
                self.setup.image = match (back, self.prior()) {
                    (Some(n), _) => n,
                    (None, Some(p)) => catalog::default_image(p).into(),
                    (None, None) => return,
                };
                if self.setup.image != done.name {
                    self.reload_image();
                }
            }
        }
    }

    /// A colour photo opened with a small grey prior chosen would become a grey thumbnail:
    /// the best photo prior is chosen instead, and the designer offers to undo it. Returns
    /// whether it switched (the picture is then read again for the new prior).
    fn switch_to_photo_prior(&mut self) -> bool {
        if self.declined_switch.as_deref() == Some(self.setup.image.as_str()) {
            return false;
        }
        let Some(photo) = catalog::photo_prior(&self.priors) else {
            return false;
        };
        let (from, to) = (self.setup.prior.clone(), photo.name.clone());
        let label = photo.label.clone();
        self.toasts.note(format!(
            "A colour photo: switched the prior to {label} (the chosen one would have made it a \
             small grey thumbnail). Undo in the designer."
        ));
        self.setup.prior = to;
        self.prior_switch = Some(from);
        self.setup.chains = self.setup.chains.min(super::actions::PHOTO_CHAINS);
        self.image_changed();
        true
    }

    /// What the designer says under the picture: what was done to it, or that it is loading.
    pub(super) fn image_note(&self) -> Option<String> {
        if self.loader.busy() {
            let name = Path::new(&self.setup.image)
                .file_name()
                .map_or(self.setup.image.clone(), |n| n.to_string_lossy().into());
            return Some(format!("reading {name}…"));
        }
        self.image.as_ref().map(|i| i.note.clone())
    }

    /// A key of everything the next run depends on (the preview and staleness use it).
    pub fn choices_key(&self) -> Option<u64> {
        self.key_of(&format!("{:?}", self.setup))
    }

    /// A key of what y depends on (not the sampler, chains…): the preview is recomputed only
    /// when it changes, so typing in the sampler line costs nothing on a large photo.
    pub fn measurement_key(&self) -> Option<u64> {
        let s = &self.setup;
        self.key_of(&format!(
            "{}|{:?}|{:?}|{}|{}|{}|{}|{}",
            s.image, s.op, s.pattern, s.factor, s.blur_sigma, s.noise_sigma, s.seed, s.image_is_y
        ))
    }

    fn key_of(&self, choices: &str) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let img = self.image.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        choices.hash(&mut h);
        self.mask.revision().hash(&mut h);
        img.note.hash(&mut h);
        img.shape.hash(&mut h);
        self.loader.shown.hash(&mut h);
        Some(h.finish())
    }

    /// Builds the recipe of the current choices (inputs written to a fresh run folder).
    pub fn current_recipe(&mut self) -> Result<(Recipe, PathBuf)> {
        match &self.mode {
            Mode::Recipe { text, base } => {
                let r = Recipe::parse(text)
                    .map_err(|e| Error::invalid("recipe", format!("not a valid recipe: {e}")))?;
                Ok((r, base.clone()))
            }
            Mode::Designer => {
                let prior = self
                    .prior()
                    .cloned()
                    .ok_or_else(|| Error::invalid("prior", "no prior is available"))?;
                if self.loader.busy() {
                    return Err(Error::invalid(
                        "image",
                        format!(
                            "{} is still being read; run again in a moment",
                            self.setup.image
                        ),
                    ));
                }
                let img = self
                    .image
                    .clone()
                    .ok_or_else(|| Error::invalid("image", "no image is loaded"))?;
                self.runs += 1;
                let dir = self.session.join(format!("run-{}", self.runs));
                let mut r = self.setup.recipe(
                    prior.spec.clone(),
                    img.shape,
                    &img.data,
                    &self.mask,
                    &dir,
                )?;
                r.class = prior.classes.map(|_| self.setup.class);
                Ok((r, dir))
            }
        }
    }
}
