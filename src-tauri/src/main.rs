// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // WebKitGTK composites on the GPU where it can (smooth video). Without a GPU,
    // WEBKIT_DISABLE_COMPOSITING_MODE=1 saves ≈ 70 MB of the web process's memory; it is
    // left to the seller, not set here: under WebKitWebDriver (the app's end-to-end
    // tests) a window without compositing never reports its page loaded.
    feza_live::run();
}
