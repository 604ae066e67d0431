//! Webhook subscriptions through the user API: a coordinator (or a system with that role) registers
//! a target URL and a watch (an area, kinds, least severity, sources) and gets the signing secret,
//! once; reads each subscription's delivery state; rotates its secret (the old one signs beside
//! the new for a day); deletes it.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, SUBSCRIBERS, SUBSCRIPTION_READERS};
use crate::domain::ValidationErrors;
use crate::domain::audit::AuditEvent;
use crate::domain::watch::Watch;
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, Problem};
use crate::store::SubscriptionRecord;
use crate::webhooks::signature::{self, Secret};
use crate::webhooks::target;

/// A subscription to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// What it is for, in words ("skolor i Hageby, natt").
    pub name: Option<String>,
    /// Where matching changes are POSTed: https (http only where the operator allows private
    /// targets).
    #[schema(example = "https://dispatch.vaktbolaget.example/lagesbild")]
    pub target_url: String,
    /// Which changes; left out, every change of the picture.
    #[serde(default)]
    pub watch: Watch,
}

/// A subscription and how its deliveries go.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub target_url: String,
    pub watch: Watch,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub delivery: DeliveryState,
    /// The signing secret (`whsec_...`): shown when the subscription is made and when its secret is
    /// rotated, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// How a subscription's deliveries go.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryState {
    /// Deliveries waiting to be taken by the target.
    pub queued: i64,
    /// Changes dropped because the queue was full.
    pub dropped: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Register a webhook subscription: matching changes of the picture are POSTed to the target,
/// signed as the Standard Webhooks specification says.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions",
    request_body = NewSubscription,
    responses((status = 201, description = "Registered; `secret` is shown this once", body = SubscriptionView),
        (status = 409, description = "The node holds as many subscriptions as it may", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = ["coordinator"])))]
pub async fn create(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(SUBSCRIBERS)?;
    let new: NewSubscription = crate::http::body::read_body(&req, payload).await?;
    let mut errors = ValidationErrors::new();
    if let Some(name) = &new.name {
        errors.check_text("name", name, 1, 200, false);
    }
    new.watch.check(&mut errors);
    let allow_private = state.webhooks.allow_private_targets;
    if let Err(problem) = target::resolve(&new.target_url, allow_private).await {
        errors.add("target_url", problem.to_string());
    }
    errors.into_result(())?;
    let now = state.clock.now();
    let secret = signature::new_secret().map_err(|_| ApiError::Internal("no randomness for a secret".into()))?;
    let record = SubscriptionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: new.name,
        target_url: new.target_url,
        watch: serde_json::to_string(&new.watch).map_err(|e| ApiError::Internal(e.to_string()))?,
        secrets: secrets_json(&[Secret { secret: secret.clone(), until: None }])?,
        created_by: caller.actor.clone(),
        created_at: now,
        cursor: state.feed.bounds().await?.last,
        dropped: 0,
        last_success_at: None,
        last_error: None,
        last_error_at: None,
        queued: 0,
    };
    let audit = AuditEvent::new("subscription.created", &caller.actor)
        .detail(format!("subscription {} to {}", record.id, record.target_url));
    if !state.store.create_subscription(&record, state.webhooks.max_subscriptions, &audit).await? {
        return Err(ApiError::Conflict(format!(
            "this node holds {} subscriptions, as many as it may (webhooks.max_subscriptions); delete one first",
            state.webhooks.max_subscriptions
        )));
    }
    Ok(HttpResponse::Created().json(view_of(record, Some(secret))?))
}

/// Every subscription, with how its deliveries go.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, description = "Subscriptions, oldest first", body = Vec<SubscriptionView>), AuthProblems),
    security(("bearer" = ["coordinator", "node-admin"])))]
pub async fn list(caller: Caller, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(all(&state, &caller).await?))
}

/// Every subscription, oldest first, with how its deliveries go (no secret).
pub(crate) async fn all(state: &AppState, caller: &Caller) -> Result<Vec<SubscriptionView>, ApiError> {
    caller.require(SUBSCRIPTION_READERS)?;
    state.store.subscriptions().await?.into_iter().map(|r| view_of(r, None)).collect()
}

/// One subscription, with how its deliveries go.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["coordinator", "node-admin"])))]
pub async fn get(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(SUBSCRIPTION_READERS)?;
    Ok(HttpResponse::Ok().json(view_of(stored(&state, &id).await?, None)?))
}

/// Delete a subscription, and what it still had to send.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["coordinator"])))]
pub async fn delete(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    remove(&state, &caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes the subscription `id` and what it still had to send.
pub(crate) async fn remove(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require(SUBSCRIBERS)?;
    let audit = AuditEvent::new("subscription.deleted", &caller.actor).detail(format!("subscription {id}"));
    if !state.store.delete_subscription(id, &audit, state.clock.now()).await? {
        return Err(not_found());
    }
    Ok(())
}

/// Rotate a subscription's secret: deliveries are signed with the new one and, for a day, the old
/// one too, so the receiver can change over without losing any.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/rotate-secret", tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 200, description = "Rotated; the new `secret` is shown this once", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["coordinator"])))]
pub async fn rotate_secret(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(SUBSCRIBERS)?;
    let mut record = stored(&state, &id).await?;
    let now = state.clock.now();
    let old: Vec<Secret> = serde_json::from_str(&record.secrets).map_err(|e| ApiError::Internal(e.to_string()))?;
    let secret = signature::new_secret().map_err(|_| ApiError::Internal("no randomness for a secret".into()))?;
    record.secrets = secrets_json(&signature::rotated(&old, secret.clone(), now))?;
    let audit = AuditEvent::new("subscription.secret_rotated", &caller.actor).detail(format!("subscription {id}"));
    if !state.store.replace_subscription_secrets(&id, &record.secrets, &audit, now).await? {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok().json(view_of(record, Some(secret))?))
}

async fn stored(state: &AppState, id: &str) -> Result<SubscriptionRecord, ApiError> {
    state.store.subscription(id).await?.ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::NotFound("no subscription with this id".into())
}

fn secrets_json(secrets: &[Secret]) -> Result<String, ApiError> {
    serde_json::to_string(secrets).map_err(|e| ApiError::Internal(e.to_string()))
}

fn view_of(record: SubscriptionRecord, secret: Option<String>) -> Result<SubscriptionView, ApiError> {
    let watch: Watch = serde_json::from_str(&record.watch).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(SubscriptionView {
        id: record.id,
        name: record.name,
        target_url: record.target_url,
        watch,
        created_by: record.created_by,
        created_at: record.created_at,
        delivery: DeliveryState {
            queued: record.queued,
            dropped: record.dropped,
            last_success_at: record.last_success_at,
            last_error: record.last_error,
            last_error_at: record.last_error_at,
        },
        secret,
    })
}
