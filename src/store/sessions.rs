//! Sign-ins in progress, single-use sign-in codes and signed-in sessions, in the database so that
//! several replicas of a node share them. Each insert also forgets what has run out, so requests
//! cannot fill the tables.

use chrono::{DateTime, Utc};

use super::{StoreError, in_write_tx, on_pool};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Who acts in it, as the audit trail names them (`user:<sub>`, `token:dev`).
    pub actor: String,
    /// Node role names, space-separated.
    pub roles: String,
}

impl super::Store {
    /// Records a sign-in that began, and forgets those older than `forget_before`.
    pub async fn save_login_attempt(
        &self,
        state: &str,
        nonce: &str,
        verifier: &str,
        browser_hash: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM login_attempts WHERE created_at_ms < $1")
                .bind(forget_before.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO login_attempts (state, nonce, pkce_verifier, browser_hash, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(state)
            .bind(nonce)
            .bind(verifier)
            .bind(browser_hash)
            .bind(at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Takes (and deletes) the sign-in with this state that the browser with this cookie hash began
    /// after `not_before`: each state works once, and only in its own browser.
    pub async fn take_login_attempt(
        &self,
        state: &str,
        browser_hash: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "DELETE FROM login_attempts WHERE state = $1 AND browser_hash = $2 AND created_at_ms >= $3 \
                 RETURNING nonce, pkce_verifier",
            )
            .bind(state)
            .bind(browser_hash)
            .bind(not_before.timestamp_millis())
            .fetch_optional(p)
            .await?
        }))
    }

    /// Stores a new session, and forgets the ones that have expired.
    pub async fn create_session(
        &self,
        id_hash: &str,
        session: &SessionRecord,
        at: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO sessions (id_hash, actor, roles, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(id_hash)
                .bind(&session.actor)
                .bind(&session.roles)
                .bind(at.timestamp_millis())
                .bind(expires.timestamp_millis())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// The session with this id hash, if it has not expired at `now`.
    pub async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<(String, String)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT actor, roles FROM sessions WHERE id_hash = $1 AND expires_at_ms > $2")
                .bind(id_hash)
                .bind(now.timestamp_millis())
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(actor, roles)| SessionRecord { actor, roles }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }
}

impl super::Store {
    /// Stores a single-use sign-in code (its hash) for a session with `roles`, and forgets the codes
    /// that have expired.
    pub async fn save_signin_code(
        &self,
        code_hash: &str,
        roles: &str,
        at: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM signin_codes WHERE expires_at_ms <= $1")
                .bind(at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO signin_codes (code_hash, roles, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(code_hash)
            .bind(roles)
            .bind(at.timestamp_millis())
            .bind(expires.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Takes (and deletes) the sign-in code with this hash if it has not expired at `now`: its
    /// roles. A code works once, whoever presents it first.
    pub async fn take_signin_code(&self, code_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, |p| {
            sqlx::query_as("DELETE FROM signin_codes WHERE code_hash = $1 AND expires_at_ms > $2 RETURNING roles")
                .bind(code_hash)
                .bind(now.timestamp_millis())
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(roles,)| roles))
    }
}
