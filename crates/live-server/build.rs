//! Bundles hls.js (from npm: scripts/web-deps.sh installs it) into the server, so the
//! /live page needs no CDN.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let hls = manifest.join("../../web/node_modules/hls.js/dist/hls.min.js");
    println!("cargo:rerun-if-changed={}", hls.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("hls.min.js");
    if let Err(e) = std::fs::copy(&hls, &out) {
        panic!(
            "{} is missing ({e}): run scripts/web-deps.sh (make run and make test do)",
            hls.display()
        );
    }
}
