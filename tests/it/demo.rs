//! `lagesbild demo`, the README's first command, as a user runs it: four nodes come up, the
//! partnership is set up through their APIs, each partner sees the example reports in the form its
//! agreement allows, SIGTERM stops it cleanly, and a second run resumes from the folder.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::until;

/// A base port with the twenty ports from it free (the demo takes eight of them, at fixed offsets).
pub fn free_base_port() -> u16 {
    crate::support::free_ports(20)
}

pub fn start(dir: &std::path::Path, base: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["demo", "--dir"])
        .arg(dir)
        .args(["--base-port", &base.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn terminate(child: &mut Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "the demo did not stop cleanly on SIGTERM");
}

/// The titles (or categories, where the title is withheld) in one node's picture.
async fn picture(node: &Value) -> Vec<(String, String)> {
    let url = format!("{}/api/v1/situation", node["api_url"].as_str().unwrap());
    let Ok(response) = reqwest::Client::new().get(url).bearer_auth(node["token"].as_str().unwrap()).send().await else {
        return Vec::new();
    };
    let Ok(page) = response.json::<Value>().await else { return Vec::new() };
    page["reports"]
        .as_array()
        .map(|reports| {
            reports
                .iter()
                .map(|r| {
                    let what = r["title"].as_str().or(r["category"].as_str()).unwrap_or_default();
                    (r["source"].as_str().unwrap_or_default().to_owned(), what.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every node's picture, each sorted.
async fn pictures(nodes: &[Value]) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    for node in nodes {
        let mut seen = picture(node).await;
        seen.sort();
        all.push(seen);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_four_partners_and_resumes() {
    let base = free_base_port();
    let dir = tempfile::tempdir().unwrap();
    let mut demo = start(dir.path(), base);
    let listing = dir.path().join("nodes.json");
    let nodes: Vec<Value> = until(|| async {
        let text = std::fs::read_to_string(&listing).ok()?;
        serde_json::from_str(&text).ok()
    })
    .await;
    assert_eq!(nodes.len(), 4);
    let [_municipality, police, retailer, guards] = &nodes[..] else { unreachable!() };
    let broken_windows = ("received".to_owned(), "Broken windows at Hagebyskolan".to_owned());
    until(|| async { picture(police).await.contains(&broken_windows).then_some(()) }).await;
    until(|| async { picture(guards).await.contains(&broken_windows).then_some(()) }).await;
    // The shop sees the police's GREEN disorder generalised (no title), and no AMBER report.
    let at_shop = until(|| async {
        let seen = picture(retailer).await;
        seen.contains(&("received".to_owned(), "disorder".to_owned())).then_some(seen)
    })
    .await;
    assert!(!at_shop.contains(&broken_windows), "{at_shop:?}");
    // Every node's picture once the exchange has settled (two reads in a row agree), to hold the
    // resumed demo to.
    let before = until(|| async {
        let first = pictures(&nodes).await;
        (first.iter().all(|p| !p.is_empty()) && pictures(&nodes).await == first).then_some(first)
    })
    .await;
    terminate(&mut demo);

    let mut again = start(dir.path(), base);
    let resumed = until(|| async { Some(pictures(&nodes).await).filter(|p| p.iter().all(|p| !p.is_empty())) }).await;
    assert_eq!(resumed, before, "the resumed demo shows each partner the picture it had before the stop");
    // The console links carry single-use codes, new at every start; the rest stays.
    let without_codes = |nodes: &[Value]| -> Vec<Value> {
        nodes
            .iter()
            .map(|n| {
                let mut n = n.clone();
                n.as_object_mut().unwrap().remove("console_url");
                n
            })
            .collect()
    };
    let listing_after: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&listing).unwrap()).unwrap();
    assert_eq!(without_codes(&listing_after), without_codes(&nodes), "a resumed demo keeps its nodes and tokens");
    terminate(&mut again);
}
