//! Look and fonts: light or dark following the system, and system fonts added as fallbacks after
//! egui's own: a CJK font (Chinese, Japanese, Korean), a symbol font (⚙ ⚠ ✖ …) and a monochrome
//! emoji font, whichever of them exist.

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

/// Fonts tried in order; the first that exists is used as the CJK fallback.
const CJK_FONTS: &[&str] = &[
    // Debian/Ubuntu: fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk, fonts-droid-fallback
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    // macOS
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    // Windows
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\simsun.ttc",
];

/// Symbols (arrows, dingbats, geometric shapes).
const SYMBOL_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:\\Windows\\Fonts\\seguisym.ttf",
];

/// Emoji as outlines (colour bitmap fonts are not drawn by egui).
const EMOJI_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
    "/usr/share/fonts/truetype/symbola/Symbola.ttf",
    "/usr/share/fonts/gdouros-symbola/Symbola.ttf",
    "C:\\Windows\\Fonts\\seguiemj.ttf",
];

fn first_existing(paths: &[&'static str]) -> Option<&'static str> {
    paths
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).is_file())
}

/// The CJK font file found on this system, if any.
pub fn cjk_font_path() -> Option<&'static str> {
    first_existing(CJK_FONTS)
}

/// The emoji font file found on this system, if any.
pub fn emoji_font_path() -> Option<&'static str> {
    first_existing(EMOJI_FONTS)
}

/// Installs egui's default fonts plus the system CJK, symbol and emoji fonts (those found) as
/// fallbacks for both families. The theme is egui's default preference, which follows the system.
pub fn install(ctx: &egui::Context) {
    let mut fonts = FontDefinitions::default();
    let found = [
        ("cjk", cjk_font_path()),
        ("symbols", first_existing(SYMBOL_FONTS)),
        ("emoji", emoji_font_path()),
    ];
    for (name, path) in found {
        let Some(bytes) = path.and_then(|p| std::fs::read(p).ok()) else {
            continue;
        };
        fonts
            .font_data
            .insert(name.into(), Arc::new(FontData::from_owned(bytes)));
        for family in [FontFamily::Proportional, FontFamily::Monospace] {
            fonts.families.entry(family).or_default().push(name.into());
        }
    }
    ctx.set_fonts(fonts);
}

/// The colour of secondary text (stats under a reply, the thinking trace).
pub fn weak(ui: &egui::Ui) -> egui::Color32 {
    ui.visuals().weak_text_color()
}

/// Background of a user message bubble.
pub fn user_bubble(ui: &egui::Ui) -> egui::Color32 {
    if ui.visuals().dark_mode {
        egui::Color32::from_rgb(0x2a, 0x35, 0x45)
    } else {
        egui::Color32::from_rgb(0xe3, 0xec, 0xf7)
    }
}
