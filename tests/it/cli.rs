//! The `lagesbild` command as an operator meets it: configuration mistakes stop start-up with a
//! message that names what to fix, and `openapi` prints the committed document.

use std::process::Command;

fn lagesbild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lagesbild"))
}

#[test]
fn serve_with_a_bad_configuration_stops_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[api]\nlisten_adress = \"127.0.0.1:0\"\n", "listen_adress"),
        ("[node]\norg_id = \"Not Valid\"\nname = \"X\"\n", "org_id"),
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[database]\nurl = \"mysql://db\"\n", "database.url"),
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[api]\ndev_token = \"short\"\n", "api.dev_token"),
        ("[node]\nname = \"X\"\n", "org_id"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let output = lagesbild().arg("serve").arg("--config").arg(&path).env_remove("DATABASE_URL").output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(key), "for {key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = lagesbild().arg("serve").arg("--config").arg(dir.path().join("missing.toml")).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let output = lagesbild().arg("openapi").output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), lagesbild::api::docs::openapi_json());
}
