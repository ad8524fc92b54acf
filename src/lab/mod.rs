//! The 2-D lab: guided diffusion in the plane, where everything is exact. A [`LabScene`] (a
//! Gaussian mixture the user edits, a measurement, σ_y) gives closed-form densities and vector
//! fields ([`fields`], [`picture`]) and an inverse problem the ordinary samplers run on with
//! thousands of particles ([`run`]), every step recorded and measured against exact posterior
//! samples. [`worker`] does all of it off the window's thread.

pub mod examples;
pub mod fields;
pub mod lessons;
pub mod picture;
pub mod run;
pub mod scene;
pub mod worker;

pub use fields::{Field, Scene};
pub use picture::{Bounds, Density, Picture};
pub use run::{Frame, LabRun, RunInfo, RunRequest};
pub use scene::{Component, LabScene, Measure};
