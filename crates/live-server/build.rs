//! Bundles the pages' browser packages (from npm: scripts/web-deps.sh installs them)
//! into the server, so no page needs a CDN: hls.js for /live, Swagger UI for /api/docs.

use std::path::PathBuf;

const BUNDLED: &[&str] = &[
    "hls.js/dist/hls.min.js",
    "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui-dist/swagger-ui.css",
];

fn main() {
    // The migrations are embedded (sqlx::migrate!): a new one rebuilds the server.
    println!("cargo:rerun-if-changed=../../migrations");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    for file in BUNDLED {
        let from = manifest.join("../../web/node_modules").join(file);
        println!("cargo:rerun-if-changed={}", from.display());
        let name = from.file_name().expect("a file name");
        if let Err(e) = std::fs::copy(&from, out_dir.join(name)) {
            panic!(
                "{} is missing ({e}): run scripts/web-deps.sh (make run and make test do)",
                from.display()
            );
        }
    }
}
