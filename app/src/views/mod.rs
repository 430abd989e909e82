//! The views: each draws one part of the window from [`crate::state::AppState`] and pushes the
//! user's commands as [`crate::state::Action`]s (text fields edit the state directly).

pub mod chat;
pub mod composer;
pub mod dialogs;
pub mod model_dialog;
pub mod settings;
pub mod sidebar;
pub mod stats_bar;

/// Megabytes or gigabytes, for memory sizes.
pub fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let n = n as f64;
    if n >= 1024.0 * MIB {
        format!("{:.1} GiB", n / (1024.0 * MIB))
    } else {
        format!("{:.0} MiB", n / MIB)
    }
}
