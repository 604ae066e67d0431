//! Validating JWT access tokens from the organisation's OpenID Connect provider. The algorithm is
//! fixed by the provider's key (never taken from the token: no `none`, no HMAC with a public key),
//! issuer and audience must match, and expiry and not-before are checked against the node's clock
//! with a small leeway. The provider's keys (JWKS) are found by discovery, cached, and fetched again
//! when a token names an unknown key, at most every 30 seconds.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::clock::Clock;
use crate::config::AuthSection;
use crate::domain::Role;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:<sub>` for a person, `client:<id>` for a system: as the audit trail names them.
    pub subject: String,
    pub roles: BTreeSet<Role>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a valid JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the token uses an algorithm its key does not allow")]
    WrongAlgorithm,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the identity provider cannot be reached to check the token: {0}")]
    Unavailable(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

const LEEWAY_SECONDS: i64 = 60;
const REFRESH_AT_MOST_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
const KEYS_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Validates tokens from one provider.
pub struct TokenValidator {
    issuer: String,
    audience: String,
    roles_claim: String,
    role_map: Arc<RoleMap>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The provider's keys and when they were fetched (by the node's clock).
    keys: RwLock<Option<(JwkSet, chrono::DateTime<chrono::Utc>)>>,
    /// When the keys were last fetched, by the node's clock.
    last_fetch: tokio::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl TokenValidator {
    pub fn new(config: &AuthSection, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(StdDuration::from_secs(5))
            .timeout(StdDuration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let role_map = Arc::new(role_map(config)?);
        Ok(Self {
            issuer: config.issuer.trim_end_matches('/').to_owned(),
            audience: config.audience.clone(),
            roles_claim: config.roles_claim.clone(),
            role_map,
            http,
            clock,
            keys: RwLock::new(None),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Checks a token and says whom it speaks for.
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let kid = header.kid.clone().ok_or_else(|| TokenError::Malformed("the token names no key (kid)".into()))?;
        let jwk = match self.key(&kid) {
            Some(jwk) => jwk,
            None => {
                self.refresh().await?;
                self.key(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        let algorithm = algorithm_of(&jwk).ok_or(TokenError::WrongAlgorithm)?;
        if header.alg != algorithm {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        // Time is judged below against the node's clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        let now = self.clock.now().timestamp();
        if claims.exp + LEEWAY_SECONDS < now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
            return Err(TokenError::NotYetValid);
        }
        // A system's token (client credentials) names its client; a person's names its subject.
        let subject = match (&claims.sub, &claims.client_id) {
            (Some(sub), Some(client)) if sub == client => format!("client:{client}"),
            (Some(sub), _) => format!("user:{sub}"),
            (None, Some(client)) => format!("client:{client}"),
            (None, None) => return Err(TokenError::Invalid("the token names neither a subject nor a client".into())),
        };
        Ok(Principal { subject, roles: self.roles_of(&claims) })
    }

    /// The node roles a token's roles claim maps to.
    fn roles_of(&self, claims: &Claims) -> BTreeSet<Role> {
        roles_in(&serde_json::Value::Object(claims.rest.clone()), &self.roles_claim, &self.role_map)
    }

    pub fn role_map(&self) -> Arc<RoleMap> {
        self.role_map.clone()
    }

    /// A key from the cache, if the cache is younger than an hour: a key the provider withdrew
    /// must not stay trusted for as long as tokens keep naming it.
    fn key(&self, kid: &str) -> Option<jsonwebtoken::jwk::Jwk> {
        let now = self.clock.now();
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.as_ref().filter(|(_, at)| now - *at < KEYS_LIFETIME).and_then(|(set, _)| set.find(kid).cloned())
    }

    /// Fetches the provider's keys by discovery, unless that was done very recently.
    async fn refresh(&self) -> Result<(), TokenError> {
        let mut last = self.last_fetch.lock().await;
        let now = self.clock.now();
        if last.is_some_and(|at| now - at < REFRESH_AT_MOST_EVERY) {
            return Ok(());
        }
        *last = Some(now);
        let discovery: serde_json::Value =
            self.fetch(&format!("{}/.well-known/openid-configuration", self.issuer)).await?;
        if discovery.get("issuer").and_then(|i| i.as_str()).map(|i| i.trim_end_matches('/'))
            != Some(self.issuer.as_str())
        {
            return Err(TokenError::Unavailable("the provider's discovery document names another issuer".into()));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|u| u.as_str())
            .ok_or_else(|| TokenError::Unavailable("the discovery document has no jwks_uri".into()))?;
        let keys: JwkSet = self.fetch(jwks_uri).await?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some((keys, now));
        Ok(())
    }
}

impl TokenValidator {
    async fn fetch<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::Unavailable(e.to_string());
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

/// Provider role names mapped to node roles.
pub type RoleMap = HashMap<String, Role>;

/// The role map of `config`: node role names map to themselves, and the configured names to theirs.
pub fn role_map(config: &AuthSection) -> Result<RoleMap, String> {
    let mut map: RoleMap = Role::ALL.iter().map(|r| (r.as_str().to_owned(), *r)).collect();
    for (theirs, ours) in &config.role_map {
        map.insert(theirs.clone(), ours.parse()?);
    }
    Ok(map)
}

/// The node roles named by the claim at `path` (dotted) of `claims`; unknown names are ignored.
pub fn roles_in(claims: &serde_json::Value, path: &str, map: &RoleMap) -> BTreeSet<Role> {
    let value = path.split('.').try_fold(claims, |v, part| v.get(part));
    let names: Vec<&str> = match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(text)) => text.split_whitespace().collect(),
        _ => Vec::new(),
    };
    names.into_iter().filter_map(|name| map.get(name).copied()).collect()
}

/// The one algorithm a key may be used with: named by the key, or implied by its type. Symmetric
/// keys are never accepted.
fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Symmetric keys, and whatever kinds the library adds later, are refused.
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) if implied == Algorithm::ES384 => Some(Algorithm::ES384),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) if implied == Algorithm::RS256 => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) if implied == Algorithm::RS256 => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) if implied == Algorithm::RS256 => Some(Algorithm::PS256),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    }
}
