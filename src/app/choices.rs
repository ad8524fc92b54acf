//! What the next run is made of: the prior, the working picture, and the recipe built from the
//! panel's choices (or the recipe text as written).

use super::catalog::PriorEntry;
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
        if recipe.shape == (1, 1, 2) && matches!(recipe.prior, PriorSpec::Gmm(_)) {
            // A 2-D mixture: the lab is where it can be seen.
            self.open_in_lab(recipe, &base)
                .map_err(|e| Error::file(path, e.to_string()))?;
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

    /// Re-reads the chosen picture into the prior's working shape.
    pub fn reload_image(&mut self) {
        let Some(prior) = self.prior().cloned() else {
            self.image = None;
            return;
        };
        let name = self.setup.image.clone();
        let bytes = match catalog::gallery_bytes(&name) {
            Some(b) => Ok(b.to_vec()),
            None => crate::files::read(Path::new(&name), crate::files::MAX_DATA_BYTES),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                self.toasts.error(e.to_string());
                // Back to the prior's own gallery picture.
                self.setup.image = catalog::default_image(&prior).into();
                if catalog::gallery_bytes(&self.setup.image).is_some() {
                    self.reload_image();
                }
                return;
            }
        };
        match catalog::working_image(
            &bytes,
            &name,
            prior.shape,
            prior.any_size,
            self.working_side,
        ) {
            Ok(img) => self.image = Some(Arc::new(img)),
            Err(e) => self.toasts.error(e.to_string()),
        }
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
                let img = self
                    .image
                    .clone()
                    .ok_or_else(|| Error::invalid("image", "no image is loaded"))?;
                self.runs += 1;
                let dir = self.session.join(format!("run-{}", self.runs));
                let r = self.setup.recipe(
                    prior.spec.clone(),
                    img.shape,
                    &img.data,
                    &self.mask,
                    &dir,
                )?;
                Ok((r, dir))
            }
        }
    }
}
