//! Two things the crate embeds at compile time:
//!
//! - the migrations (`sqlx::migrate!`), so a change to one rebuilds;
//! - the console's browser libraries (Leaflet and its marker clustering), installed from the npm
//!   registry with `npm ci` from the lockfile in `src/console/assets/` into `OUT_DIR`, never copied
//!   into the sources; the files the console serves are copied to `OUT_DIR/console-vendor/`, where
//!   `console::assets` embeds them. `LAGESBILD_CONSOLE_NODE_MODULES` may name a `node_modules`
//!   folder installed from the same lockfile instead (a container build, or a machine without the
//!   registry).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the console's npm manifest and lockfile live.
const ASSETS: &str = "src/console/assets";

/// The packages the console embeds files of; each must be installed at its locked version.
const PACKAGES: [&str; 2] = ["leaflet", "leaflet.markercluster"];

/// The files the console serves, as `node_modules` holds them.
const FILES: [&str; 12] = [
    "leaflet/dist/leaflet.js",
    "leaflet/dist/leaflet.css",
    "leaflet/dist/images/layers.png",
    "leaflet/dist/images/layers-2x.png",
    "leaflet/dist/images/marker-icon.png",
    "leaflet/dist/images/marker-icon-2x.png",
    "leaflet/dist/images/marker-shadow.png",
    "leaflet.markercluster/dist/leaflet.markercluster.js",
    "leaflet.markercluster/dist/MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet/LICENSE",
    "leaflet.markercluster/MIT-LICENCE.txt",
];

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed={ASSETS}/package.json");
    println!("cargo:rerun-if-changed={ASSETS}/package-lock.json");
    println!("cargo:rerun-if-env-changed=LAGESBILD_CONSOLE_NODE_MODULES");
    match browser_libraries().and_then(|modules| vendor(&modules)) {
        Ok(()) => {}
        Err(why) => {
            eprintln!("error: the console's browser libraries are not available: {why}");
            eprintln!(
                "       They come from the npm registry, installed by `npm ci` from {ASSETS}/package-lock.json: \
                 install Node.js and npm, or set LAGESBILD_CONSOLE_NODE_MODULES to a node_modules folder \
                 installed from that lockfile."
            );
            std::process::exit(1);
        }
    }
}

/// The `node_modules` folder holding the locked packages: the one named in the environment, or
/// one installed here by `npm ci` (again only when the lockfile changed).
fn browser_libraries() -> Result<PathBuf, String> {
    let lock = std::fs::read_to_string(Path::new(ASSETS).join("package-lock.json"))
        .map_err(|e| format!("cannot read {ASSETS}/package-lock.json: {e}"))?;
    let locked: serde_json::Value =
        serde_json::from_str(&lock).map_err(|e| format!("{ASSETS}/package-lock.json is not JSON: {e}"))?;
    if let Some(given) = std::env::var_os("LAGESBILD_CONSOLE_NODE_MODULES") {
        let given = PathBuf::from(given);
        check_versions(&given, &locked)?;
        return Ok(given);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "cargo did not set OUT_DIR".to_owned())?);
    let install = out.join("console-npm");
    let modules = install.join("node_modules");
    let stamp = install.join("installed-from.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str())
        && check_versions(&modules, &locked).is_ok()
    {
        return Ok(modules);
    }
    std::fs::create_dir_all(&install).map_err(|e| format!("cannot create {}: {e}", install.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(Path::new(ASSETS).join(file), install.join(file))
            .map_err(|e| format!("cannot copy {file} into {}: {e}", install.display()))?;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&install)
        .status()
        .map_err(|e| format!("cannot run npm ({e})"))?;
    if !status.success() {
        return Err(format!("`npm ci` in {} failed ({status})", install.display()));
    }
    check_versions(&modules, &locked)?;
    std::fs::write(&stamp, &lock).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(modules)
}

/// Copies the files the console serves from `modules` to `OUT_DIR/console-vendor/`, where
/// `console::assets` embeds them (the same paths below `node_modules`).
fn vendor(modules: &Path) -> Result<(), String> {
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "cargo did not set OUT_DIR".to_owned())?);
    for file in FILES {
        let (from, to) = (modules.join(file), out.join("console-vendor").join(file));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    Ok(())
}

/// Each package in `modules` is the version the lockfile names.
fn check_versions(modules: &Path, locked: &serde_json::Value) -> Result<(), String> {
    for package in PACKAGES {
        let want = locked["packages"][format!("node_modules/{package}")]["version"]
            .as_str()
            .ok_or_else(|| format!("the lockfile does not name {package}"))?;
        let manifest = modules.join(package).join("package.json");
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let have: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", manifest.display()))?;
        if have["version"].as_str() != Some(want) {
            return Err(format!("{} is {:?}, but the lockfile says {want}", manifest.display(), have["version"]));
        }
    }
    Ok(())
}
