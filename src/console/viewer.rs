//! Who is looking at a console page: the person signed in by the session cookie (however they
//! signed in), in their language. Without a session a page sends them to sign in and back. Forms
//! that change anything must carry the session's CSRF token and come from this node's own pages;
//! roles are checked as the API checks them, and a refusal says which role it needs.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use super::ConsoleSettings;
use super::alerts::AlertLine;
use super::form::FormData;
use super::i18n::Lang;
use super::page::{Chrome, ConsoleError, Section};
use crate::api::AppState;
use crate::api::auth::{Caller, READERS};
use crate::api::login::SESSION_COOKIE;
use crate::auth::session;
use crate::domain::Role;
use crate::http::ApiError;

/// The person looking at a page.
pub struct Viewer {
    pub caller: Caller,
    pub lang: Lang,
    /// The session cookie's secret, from which the form token is derived.
    secret: String,
    /// The page's path and query.
    here: String,
    node_name: String,
    /// The partners' urgent reports nobody here has seen yet (for readers only).
    alerts: Vec<AlertLine>,
}

impl Viewer {
    /// The frame of a page of `section` for this person.
    pub fn chrome(&self, section: Section) -> Chrome {
        let mut chrome = Chrome::signed_in(
            self.lang,
            &self.node_name,
            &self.caller.actor,
            &self.caller.roles,
            session::csrf_token(&self.secret),
            section,
            self.here.clone(),
        );
        chrome.alerts = self.alerts.clone();
        chrome
    }

    /// Refuses, with a page that names the role it needs, unless this person holds one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ConsoleError> {
        if self.may(allowed) { Ok(()) } else { Err(ConsoleError::role(self.lang, allowed, &self.caller.roles)) }
    }

    /// Whether this person holds one of `allowed`.
    pub fn may(&self, allowed: &[Role]) -> bool {
        allowed.iter().any(|r| self.caller.roles.contains(r))
    }

    /// An error of the API's operations, told in this person's language.
    pub fn fail(&self, error: ApiError) -> ConsoleError {
        ConsoleError::from_api(error, self.lang)
    }

    /// The form of a request that changes something: for a person holding one of `allowed`, read
    /// within the body limit, carrying this session's token and sent from this node's own pages.
    pub async fn form(
        &self,
        allowed: &[Role],
        req: &HttpRequest,
        payload: actix_web::web::Payload,
    ) -> Result<FormData, ConsoleError> {
        self.require(allowed)?;
        let form = FormData::read(req, payload).await.map_err(|e| self.fail(e))?;
        self.check_form(req, &form)?;
        Ok(form)
    }

    /// Refuses a form that does not carry this session's token, or that a page of another site sent.
    fn check_form(&self, req: &HttpRequest, form: &FormData) -> Result<(), ConsoleError> {
        let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let from_elsewhere = site.is_some_and(|s| s != "same-origin");
        if from_elsewhere || !session::csrf_matches(&self.secret, form.text("csrf")) {
            return Err(ConsoleError::page(StatusCode::FORBIDDEN, self.lang, self.lang.texts().form_expired));
        }
        Ok(())
    }
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let settings = req.app_data::<Data<ConsoleSettings>>().cloned();
        let secret = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let lang = Lang::of(req);
        let here = req.uri().path_and_query().map_or_else(|| "/console/".to_owned(), |p| p.as_str().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| ConsoleError::internal("application state missing".into()))?;
            let Some(secret) = secret else { return Err(ConsoleError::SignIn { next: here }) };
            let caller = match crate::api::auth::from_session(&state, &secret).await {
                Ok(caller) => caller,
                Err(ApiError::Unauthorized(_)) => return Err(ConsoleError::SignIn { next: here }),
                Err(other) => return Err(ConsoleError::from_api(other, lang)),
            };
            let mut viewer =
                Viewer { caller, lang, secret, here, node_name: state.node.name.clone(), alerts: Vec::new() };
            if let Some(settings) = settings
                && viewer.may(READERS)
            {
                viewer.alerts = super::alerts::unseen(&state.store, lang, &settings).await;
            }
            Ok(viewer)
        })
    }
}
