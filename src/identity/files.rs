//! The identity on disk: `init` writes a node's keys, card and configuration; [`NodeKeys::load`]
//! reads and cross-checks them at start-up; `rotate` replaces the keys, keeping the old TLS key as
//! `*.previous` for the overlap and archiving the old signing key, never deleting either.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::IdentityError;
use super::card::{sign_card, verify_card};
use crate::config::{IdentitySection, NodeConfig};
use crate::crypto::jws::Jws;
use crate::crypto::keys::SigningKey;
use crate::crypto::tls::TlsIdentity;
use crate::crypto::{KeyFileError, write_new};
use crate::domain::{CardPin, NodeCard, OrgId};

/// How long new certificates and cards are valid.
const VALIDITY: Duration = Duration::days(730);

/// The node's keys and its card, checked against each other.
#[derive(Debug)]
pub struct NodeKeys {
    pub signing: SigningKey,
    pub tls: TlsIdentity,
    /// The TLS identity being retired after a rotation, for partners that know only it.
    pub previous_tls: Option<TlsIdentity>,
    pub card: NodeCard,
    pub signed_card: Jws,
}

impl NodeKeys {
    /// Loads the identity named in `config` and checks that key, certificate, card and
    /// configuration all describe the same node.
    pub fn load(config: &NodeConfig, now: DateTime<Utc>) -> Result<Self, IdentityError> {
        let section = config
            .identity
            .as_ref()
            .ok_or_else(|| IdentityError::Invalid("the configuration has no [identity] section".into()))?;
        let signing = SigningKey::load(&section.signing_key)?;
        let tls = TlsIdentity::load(&section.tls_cert, &section.tls_key)?;
        let card_error = |reason: String| IdentityError::Card { path: section.card.display().to_string(), reason };
        let text = std::fs::read(&section.card).map_err(|e| card_error(e.to_string()))?;
        let signed_card = Jws::parse(&text).map_err(|e| card_error(e.to_string()))?;
        let card = verify_card(&signed_card, None, now).map_err(|e| card_error(e.to_string()))?;
        if card.org_id != config.node.org_id {
            return Err(card_error(format!("it is for {}, but node.org_id is {}", card.org_id, config.node.org_id)));
        }
        if card.signing_key != signing.public().to_b64() {
            return Err(card_error("it names another signing key than the one in identity.signing_key".into()));
        }
        if card.tls_pins.first().map(|p| &p.pin) != Some(&tls.pin) {
            return Err(card_error("its current TLS pin is not the key in identity.tls_cert".into()));
        }
        let previous_tls = load_previous_tls(section, &card, now)?;
        Ok(Self { signing, tls, previous_tls, card, signed_card })
    }
}

fn previous(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".previous");
    PathBuf::from(name)
}

fn load_previous_tls(
    section: &IdentitySection,
    card: &NodeCard,
    now: DateTime<Utc>,
) -> Result<Option<TlsIdentity>, IdentityError> {
    let (cert, key) = (previous(&section.tls_cert), previous(&section.tls_key));
    if !cert.exists() {
        return Ok(None);
    }
    let identity = TlsIdentity::load(&cert, &key)?;
    Ok(card.live_pins(now).any(|pin| *pin == identity.pin).then_some(identity))
}

/// What `init` needs to know.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub org_id: OrgId,
    pub name: String,
    pub dir: PathBuf,
    pub api_listen: SocketAddr,
    pub federation_listen: SocketAddr,
    /// The URL partners use to reach the federation listener (https).
    pub federation_url: String,
    /// Defaults to a SQLite file in `dir`.
    pub database_url: Option<String>,
}

/// Creates a node in `options.dir`: keys, certificate, card and `node.toml`. Refuses to touch a
/// folder that already holds any of them. Returns the configuration file's path.
pub fn init(options: &InitOptions, now: DateTime<Utc>) -> Result<PathBuf, IdentityError> {
    let dir = std::path::absolute(&options.dir)
        .map_err(|e| IdentityError::Invalid(format!("cannot resolve {}: {e}", options.dir.display())))?;
    let config_path = dir.join("node.toml");
    if config_path.exists() {
        return Err(KeyFileError::Exists { path: config_path }.into());
    }
    let section = IdentitySection {
        signing_key: dir.join("keys/signing-key.pem"),
        tls_cert: dir.join("keys/tls-cert.pem"),
        tls_key: dir.join("keys/tls-key.pem"),
        card: dir.join("node-card.json"),
    };
    let signing = SigningKey::generate(&section.signing_key)?;
    let hosts = certificate_hosts(&options.federation_url);
    let tls = TlsIdentity::generate(
        &options.org_id,
        &hosts,
        now - Duration::hours(1),
        now + VALIDITY,
        &section.tls_cert,
        &section.tls_key,
    )?;
    let card = NodeCard {
        org_id: options.org_id.clone(),
        name: options.name.clone(),
        federation_url: options.federation_url.clone(),
        signing_key: signing.public().to_b64(),
        previous_signing_key: None,
        tls_pins: vec![CardPin { pin: tls.pin.clone(), until: None }],
        issued_at: now,
        valid_until: now + VALIDITY,
    };
    card.check(now).map_err(|e| IdentityError::Invalid(format!("the card would be invalid: {e}")))?;
    write_new(&section.card, sign_card(&card, &[&signing]).to_json().as_bytes(), false)?;
    let database_url = options.database_url.clone().unwrap_or_else(|| "sqlite://lagesbild.db".to_owned());
    let config = config_text(options, &database_url);
    write_new(&config_path, config.as_bytes(), true)?;
    Ok(config_path)
}

fn config_text(options: &InitOptions, database_url: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        "# Made by `lagesbild init`. Keys and card paths are relative to this file.\n\n\
         [node]\norg_id = {org}\nname = {name}\n\n\
         [api]\nlisten = {api}\n# Set the API token in the environment: LAGESBILD_API_DEV_TOKEN=...\n\n\
         [database]\nurl = {db}\n\n\
         [identity]\nsigning_key = \"keys/signing-key.pem\"\ntls_cert = \"keys/tls-cert.pem\"\n\
         tls_key = \"keys/tls-key.pem\"\ncard = \"node-card.json\"\n\n\
         [federation]\nlisten = {fed}\ntls_overlap_days = 14\n",
        org = quote(options.org_id.as_str()),
        name = quote(&options.name),
        api = quote(&options.api_listen.to_string()),
        db = quote(database_url),
        fed = quote(&options.federation_listen.to_string()),
    )
}

/// The host names a certificate is made out to: the federation URL's host, and localhost. Pins,
/// not names, identify partners; the names only help tools that look at the certificate.
fn certificate_hosts(federation_url: &str) -> Vec<String> {
    let authority = federation_url.trim_start_matches("https://").split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let mut hosts = vec!["localhost".to_owned()];
    if !host.is_empty() && host != "localhost" {
        hosts.push(host.to_owned());
    }
    hosts
}

/// Signs a new card for the keys the node has now: after an operator installed a certificate from
/// a certificate authority, say. The signing key stays; the card's TLS pin becomes the current
/// certificate's. Returns the new card.
pub fn reissue_card(config: &NodeConfig, now: DateTime<Utc>) -> Result<NodeCard, IdentityError> {
    let section = config.identity.as_ref().ok_or_else(|| IdentityError::Invalid("no [identity] section".into()))?;
    let signing = SigningKey::load(&section.signing_key)?;
    let tls = TlsIdentity::load(&section.tls_cert, &section.tls_key)?;
    let card_error = |reason: String| IdentityError::Card { path: section.card.display().to_string(), reason };
    let text = std::fs::read(&section.card).map_err(|e| card_error(e.to_string()))?;
    // The node's own file, which may have expired: its content is taken for what stays the same
    // only if it names this node's signing key; the new card is signed afresh below.
    let payload = Jws::parse(&text).and_then(|jws| jws.unverified_payload()).map_err(|e| card_error(e.to_string()))?;
    let old: NodeCard = serde_json::from_slice(&payload).map_err(|e| card_error(e.to_string()))?;
    if old.signing_key != signing.public().to_b64() {
        return Err(card_error("it names another signing key than identity.signing_key".into()));
    }
    let card = NodeCard {
        tls_pins: vec![CardPin { pin: tls.pin.clone(), until: None }],
        issued_at: now,
        valid_until: now + VALIDITY,
        previous_signing_key: None,
        ..old
    };
    replace_card(&section.card, &sign_card(&card, &[&signing]))?;
    Ok(card)
}

/// Writes a card beside the current one and renames it over it.
fn replace_card(path: &Path, signed: &Jws) -> Result<(), IdentityError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    let staged = PathBuf::from(name);
    let _ = std::fs::remove_file(&staged);
    write_new(&staged, signed.to_json().as_bytes(), false)?;
    std::fs::rename(&staged, path).map_err(|source| KeyFileError::Unwritable { path: path.to_owned(), source })?;
    Ok(())
}

/// What `rotate` did.
#[derive(Debug)]
pub struct RotateOutcome {
    pub card: NodeCard,
    pub retired_signing_key: PathBuf,
}

/// Replaces the node's signing and TLS keys. The new card names both TLS pins (the old one until
/// the overlap ends) and is signed by the new and the old signing key, so partners accept it without
/// a new exchange out of band. New keys are written beside the old ones first, so a failure leaves
/// the current identity as it was.
pub fn rotate(config: &NodeConfig, now: DateTime<Utc>) -> Result<RotateOutcome, IdentityError> {
    let current = NodeKeys::load(config, now)?;
    let section = config.identity.as_ref().ok_or_else(|| IdentityError::Invalid("no [identity] section".into()))?;
    let overlap = Duration::days(i64::from(config.federation.as_ref().map_or(14, |f| f.tls_overlap_days)));
    let staged = |path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".new");
        PathBuf::from(name)
    };
    let signing = SigningKey::generate(&staged(&section.signing_key))?;
    let tls = TlsIdentity::generate(
        &current.card.org_id,
        &certificate_hosts(&current.card.federation_url),
        now - Duration::hours(1),
        now + VALIDITY,
        &staged(&section.tls_cert),
        &staged(&section.tls_key),
    )?;
    let card = NodeCard {
        signing_key: signing.public().to_b64(),
        previous_signing_key: Some(current.signing.public().to_b64()),
        tls_pins: vec![
            CardPin { pin: tls.pin.clone(), until: None },
            CardPin { pin: current.tls.pin.clone(), until: Some(now + overlap) },
        ],
        issued_at: now,
        valid_until: now + VALIDITY,
        ..current.card.clone()
    };
    let signed = sign_card(&card, &[&signing, &current.signing]);

    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let with_suffix = |path: &Path, suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let retired_signing_key = with_suffix(&section.signing_key, &format!(".retired-{stamp}"));
    let moves = [
        (previous(&section.tls_cert), with_suffix(&section.tls_cert, &format!(".retired-{stamp}"))),
        (previous(&section.tls_key), with_suffix(&section.tls_key, &format!(".retired-{stamp}"))),
        (section.tls_cert.clone(), previous(&section.tls_cert)),
        (section.tls_key.clone(), previous(&section.tls_key)),
        (section.signing_key.clone(), retired_signing_key.clone()),
        (staged(&section.signing_key), section.signing_key.clone()),
        (staged(&section.tls_cert), section.tls_cert.clone()),
        (staged(&section.tls_key), section.tls_key.clone()),
    ];
    for (from, to) in moves {
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|source| KeyFileError::Unwritable { path: to.clone(), source })?;
        }
    }
    replace_card(&section.card, &signed)?;
    Ok(RotateOutcome { card, retired_signing_key })
}
