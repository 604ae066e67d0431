//! Browser sessions, however a person signed in: through the identity provider, with the node's
//! development token, or with a single-use sign-in code (the links the demo prints). A session is
//! a random cookie secret of which only a hash is stored; its forms carry a CSRF token derived
//! from that secret, which a page of another site cannot know. Sign-in codes are stored the same
//! way, and each works once.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use crate::domain::Role;
use crate::domain::audit::sha256_hex;
use crate::store::{SessionRecord, Store, StoreError};

/// How long a sign-in code may wait before it is used.
pub const CODE_LIFETIME: Duration = Duration::hours(12);

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the system random generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 32 random bytes, base64url: a cookie's secret, or a sign-in code.
pub fn random_secret() -> Result<String, SessionError> {
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).map_err(|_| SessionError::Random)?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret))
}

/// What is stored of a session's cookie secret or of a code: its hash, so a copy of the table
/// opens nothing.
pub fn stored_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// The roles as a session stores them: their names, space-separated.
pub fn role_names(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" ")
}

/// The roles a session or code stored; names the node no longer knows are left out.
pub fn roles_of(names: &str) -> BTreeSet<Role> {
    names.split_whitespace().filter_map(|r| r.parse().ok()).collect()
}

/// Opens a session for `actor` with `roles` until `now + lifetime`: the cookie's secret.
pub async fn open(
    store: &Store,
    actor: &str,
    roles: &BTreeSet<Role>,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<String, SessionError> {
    let secret = random_secret()?;
    let record = SessionRecord { actor: actor.to_owned(), roles: role_names(roles) };
    store.create_session(&stored_hash(&secret), &record, now, now + lifetime).await?;
    Ok(secret)
}

/// The CSRF token of a session's forms: derived from the cookie's secret, which only this node
/// and the browser holding the cookie know.
pub fn csrf_token(secret: &str) -> String {
    let mut token = sha256_hex(format!("lagesbild form\0{secret}").as_bytes());
    token.truncate(43);
    token
}

/// Whether `presented` is the CSRF token of the session with this secret, compared in a time that
/// does not depend on where they differ.
pub fn csrf_matches(secret: &str, presented: &str) -> bool {
    let expected = csrf_token(secret);
    expected.len() == presented.len()
        && expected.bytes().zip(presented.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Issues a single-use sign-in code for a session with `roles`, valid for [`CODE_LIFETIME`].
pub async fn issue_code(store: &Store, roles: &BTreeSet<Role>, now: DateTime<Utc>) -> Result<String, SessionError> {
    let code = random_secret()?;
    store.save_signin_code(&stored_hash(&code), &role_names(roles), now, now + CODE_LIFETIME).await?;
    Ok(code)
}

/// The roles of the sign-in code, taking it: `None` if it is unknown, used or expired.
pub async fn redeem_code(store: &Store, code: &str, now: DateTime<Utc>) -> Result<Option<BTreeSet<Role>>, StoreError> {
    Ok(store.take_signin_code(&stored_hash(code), now).await?.map(|names| roles_of(&names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let token = csrf_token("secret-a");
        assert!(csrf_matches("secret-a", &token));
        assert!(!csrf_matches("secret-b", &token));
        assert!(!csrf_matches("secret-a", ""));
        assert!(!csrf_matches("secret-a", &token[1..]));
    }

    #[test]
    fn roles_survive_the_round_trip_through_their_names() {
        let roles: BTreeSet<Role> = [Role::Reporter, Role::NodeAdmin].into_iter().collect();
        assert_eq!(roles_of(&role_names(&roles)), roles);
        assert!(roles_of("reporter no-such-role").contains(&Role::Reporter));
    }
}
