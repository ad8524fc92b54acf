//! Posterior Lab: posterior sampling for image inverse problems with score-based priors.
//!
//! Layers, top to bottom (arrows point down only): `app` (the window) and `cli` → `engine`
//! (the worker thread) and `output` → `recipe` → `samplers` → `problem` → `priors` +
//! `operators` → `tensor`/`linalg`. `train` and `bench` sit beside `cli`. See
//! `../shared/DESIGN.md` for the picture.

pub mod app;
pub mod backend;
pub mod batch;
pub mod bench;
pub mod calibration;
pub mod checkpoint;
pub mod cli;
pub mod denoise;
pub mod engine;
pub mod error;
pub mod files;
pub mod image_io;
pub mod lab;
pub mod linalg;
pub mod metrics;
pub mod models;
pub mod noise_model;
pub mod npy;
pub mod operators;
pub mod output;
pub mod photo;
pub mod priors;
pub mod problem;
pub mod recipe;
pub mod ron_format;
pub mod samplers;
pub mod schedule;
pub mod signals;
pub mod tensor;
pub mod testbeds;
pub mod train;
pub mod uncertainty;

pub use error::{Error, Result};
