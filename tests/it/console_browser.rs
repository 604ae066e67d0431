//! The console in a real browser: Debian's Chromium, driven by playwright-core (both installed by
//! `tests/run`; a missing browser fails the test, it never skips), against real nodes. The journey
//! through the four partners of `lagesbild demo` is `tests/console/journey.mjs`; signing in through
//! the organisation's identity provider is `tests/console/signin.mjs`. Each step's screenshot is
//! kept under `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::demo::{free_base_port, start, terminate};
use crate::support::{Backend, OidcProvider, TestNode, until};

/// Where a script's screenshots go.
fn screenshots(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs a script of `tests/console` with `args`, asserting it passed; what it printed.
fn run_script(script: &str, args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is not installed: run tests/run (it installs Debian's chromium)"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run tests/run (npm ci in tests/console)"
    );
    let output =
        Command::new("node").arg(script).args(args).current_dir(&dir).output().expect("node runs the browser script");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    stdout.into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_demo_partners_file_share_retract_and_sign_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = start(dir.path(), free_base_port());
    let listing = dir.path().join("nodes.json");
    let _: Vec<Value> = until(|| async {
        let nodes: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&listing).ok()?).ok()?;
        nodes.iter().all(|n| n["console_url"].is_string()).then_some(nodes)
    })
    .await;
    let shots = screenshots("journey");
    let printed = run_script("journey.mjs", &[listing.to_str().unwrap(), shots.to_str().unwrap()]);
    assert!(printed.contains("the console journey passed"), "{printed}");
    terminate(&mut demo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_to_the_console_through_the_organisations_provider() {
    let port = crate::support::free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/callback");
    let provider = OidcProvider::start_with_callback(&callback);
    let mut auth = provider.auth_config();
    auth.client_id = Some("lagesbild-node".into());
    auth.client_secret = Some("lagesbild-node-secret".into());
    auth.redirect_url = Some(callback);
    let node = TestNode::spawn_with(Backend::Sqlite, move |config| {
        config.api.listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.auth = Some(auth);
    })
    .await;
    let shots = screenshots("signin");
    run_script("signin.mjs", &[&node.base, shots.to_str().unwrap()]);
    node.stop().await;
}
