//! The lanternfish desktop chat app (`lanternfish-app`): egui/eframe on the engine's worker
//! thread, streaming replies with markdown and code, R1-style reasoning traces, saved chats.
//!
//! Layout: [`state`] is UI-only state and the [`state::Action`]s views emit; [`bridge`] owns the
//! engine and the threads that stream its events to the UI; [`store`] saves chats atomically;
//! [`views`] draw the window; [`theme`] sets fonts and colours; [`app::ChatApp`] ties them up.

pub mod app;
pub mod bridge;
pub mod state;
pub mod store;
pub mod theme;
pub mod views;

pub use app::ChatApp;
