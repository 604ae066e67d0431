//! Signing people in through the organisation's OpenID Connect provider: authorization code flow
//! with PKCE, state and nonce (openidconnect). The sign-in's state, nonce and verifier wait in the
//! database until the provider calls back; the ID token's signature, issuer, audience and nonce are
//! checked by the library; the session that follows lives in the database too, its cookie secret
//! stored only as a hash. Roles come from the ID token's roles claim, as for access tokens.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};

use super::RoleMap;
use super::session::{self, SessionError};
use super::token::roles_in;
use crate::domain::Role;
use crate::domain::audit::sha256_hex;
use crate::store::{SessionRecord, Store, StoreError};

/// How long the provider's metadata and keys are used before they are fetched again.
const METADATA_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a sign-in may take, from the redirect to the provider to its call back.
const ATTEMPT_LIFETIME: Duration = Duration::minutes(10);

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider cannot be reached: {0}")]
    Provider(String),
    #[error("this sign-in is unknown, was used already or took too long; start again")]
    UnknownState,
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sign-in of people, for one provider and client.
pub struct Login {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    roles_claim: String,
    role_map: Arc<RoleMap>,
    pub session_lifetime: Duration,
    /// Whether cookies need https (the node's callback is https).
    pub secure_cookie: bool,
    /// The node's own origin (`https://host:port`), from which alone cookie-authenticated writes
    /// are accepted.
    pub origin: String,
    http: reqwest::Client,
    /// The provider's metadata (with its keys) and when it was fetched, by the wall clock.
    metadata: tokio::sync::RwLock<Option<(CoreProviderMetadata, std::time::Instant)>>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("issuer", &self.issuer.as_str()).finish()
    }
}

impl Login {
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_url: &str,
        roles_claim: &str,
        role_map: Arc<RoleMap>,
        session_hours: u32,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // The library follows no redirects itself; neither must its client (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("auth.issuer: {e}"))?,
            client_id: ClientId::new(client_id.to_owned()),
            client_secret: ClientSecret::new(client_secret.to_owned()),
            redirect: RedirectUrl::new(redirect_url.to_owned()).map_err(|e| format!("auth.redirect_url: {e}"))?,
            roles_claim: roles_claim.to_owned(),
            role_map,
            session_lifetime: Duration::hours(i64::from(session_hours)),
            secure_cookie: redirect_url.starts_with("https://"),
            origin: origin_of(redirect_url),
            http,
            metadata: tokio::sync::RwLock::new(None),
        })
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        LoginError,
    > {
        // Fetched again after an hour, and after a failed check, so the provider's key rotations
        // are followed.
        let cached = self.metadata.read().await.clone().filter(|(_, at)| at.elapsed() < METADATA_LIFETIME);
        let metadata = match cached {
            Some((metadata, _)) => metadata,
            None => {
                let fresh = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
                    .await
                    .map_err(|e| LoginError::Provider(e.to_string()))?;
                *self.metadata.write().await = Some((fresh.clone(), std::time::Instant::now()));
                fresh
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// Starts a sign-in: the URL to send the browser to, and the secret of the cookie that ties the
    /// sign-in to this browser (so nobody else can complete it, nor push their own sign-in on it).
    pub async fn begin(&self, store: &Store, now: DateTime<Utc>) -> Result<(String, String), LoginError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("roles".into()))
            .set_pkce_challenge(challenge)
            .url();
        let browser = session::random_secret().map_err(|e| LoginError::Provider(e.to_string()))?;
        let browser_hash = sha256_hex(browser.as_bytes());
        store
            .save_login_attempt(
                state.secret(),
                nonce.secret(),
                verifier.secret(),
                &browser_hash,
                now,
                now - ATTEMPT_LIFETIME,
            )
            .await?;
        Ok((url.to_string(), browser))
    }

    /// Completes a sign-in when the provider calls back: the session's cookie secret and record.
    pub async fn complete(
        &self,
        store: &Store,
        code: &str,
        state: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, SessionRecord), LoginError> {
        let (nonce, verifier) = store
            .take_login_attempt(state, &sha256_hex(browser.as_bytes()), now - ATTEMPT_LIFETIME)
            .await?
            .ok_or(LoginError::UnknownState)?;
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Refused(e.to_string()))?;
        let id_token = response.id_token().ok_or_else(|| LoginError::Refused("no ID token".into()))?;
        let claims = match id_token.claims(&client.id_token_verifier(), &Nonce::new(nonce)) {
            Ok(claims) => claims,
            Err(error) => {
                // Perhaps the provider's keys changed: the next sign-in fetches them again.
                *self.metadata.write().await = None;
                return Err(LoginError::Refused(error.to_string()));
            }
        };
        // The library verified the token; its payload is read again only for the roles claim.
        let payload: serde_json::Value = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let roles: BTreeSet<Role> = roles_in(&payload, &self.roles_claim, &self.role_map).into_iter().collect();
        let actor = format!("user:{}", claims.subject().as_str());
        let cookie = session::open(store, &actor, &roles, now, self.session_lifetime).await.map_err(|e| match e {
            SessionError::Store(e) => LoginError::Store(e),
            SessionError::Random => LoginError::Provider(e.to_string()),
        })?;
        Ok((cookie, SessionRecord { actor, roles: session::role_names(&roles) }))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
}
