//! What the user asked for in a frame. Panels return actions while drawing; the app applies
//! them after drawing (egui demo style), so no panel touches the engine, the disk or another
//! panel's state.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a new run of the current choices (cancelling any other).
    Run,
    Pause,
    Resume,
    /// Pause when running, resume when paused.
    TogglePause,
    /// One step, then pause (starts a paused run when there is none).
    Step,
    Stop,
    /// Stop and forget the run: the views go back to the inputs.
    Reset,
    Undo,
    Redo,
    ClearMask,
    /// Paint (or erase) at a picture position; the stroke goes on until `EndStroke`.
    Paint([f32; 2]),
    EndStroke,
    /// The prior was changed in the panel (the picture follows it).
    PriorChanged,
    /// The picture (or the working size) was changed: load it again.
    ImageChanged,
    /// Switch to the designer, or to the recipe editor on the current choices.
    Designer,
    RecipeMode,
    /// Show the path window (and the platform dialog, where there is one).
    AskOpenImage,
    AskExport,
    OpenImage(PathBuf),
    ExportTo(PathBuf),
    /// A file dropped on the window.
    Dropped(PathBuf),
    DroppedBytes(std::sync::Arc<[u8]>),
}
