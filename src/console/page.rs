//! What every console page shares: the frame around it ([`Chrome`]: the node, who is signed in,
//! the navigation their roles open, the language and its switch, the form token), rendering a
//! template into a response, and the error page ([`ConsoleError`]), which says in the reader's
//! language what went wrong and never shows an internal cause.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::i18n::{Lang, Texts};
use crate::api::auth::{
    AGREEMENT_ADMINS, AGREEMENT_READERS, NODE_ADMINS, PREVIEWERS, READERS, REQUEST_READERS, REQUESTERS,
    SUBSCRIPTION_READERS, WRITERS,
};
use crate::domain::Role;
use crate::http::ApiError;

/// One entry of the main menu, shown to those whose roles open it.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The signed-in person, as the frame shows them.
pub struct User {
    pub actor: String,
    /// Their roles, in words.
    pub roles: String,
    /// The token every form of theirs carries.
    pub csrf: String,
}

/// The frame around every page.
pub struct Chrome {
    pub t: &'static Texts,
    pub lang: Lang,
    pub node_name: String,
    pub user: Option<User>,
    pub nav: Vec<NavItem>,
    /// This page's path and query, where the language switch comes back to.
    pub here: String,
    /// Partners' urgent reports nobody here has seen yet, shown at the top of every page.
    pub alerts: Vec<super::alerts::AlertLine>,
}

/// Which menu entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Picture,
    NewReport,
    Patrol,
    Agreements,
    Partners,
    Audit,
    DeadLetters,
    Subscriptions,
    Requests,
    Me,
    None,
}

/// The menu: each entry, the roles that open it (as the API's routes require them), its section.
const MENU: &[(&str, Section, &[Role])] = &[
    ("/console/", Section::Picture, READERS),
    ("/console/reports/new", Section::NewReport, WRITERS),
    ("/console/patrol", Section::Patrol, READERS),
    ("/console/requests", Section::Requests, REQUEST_READERS),
    ("/console/agreements", Section::Agreements, AGREEMENT_READERS),
    ("/console/partners", Section::Partners, NODE_ADMINS),
    ("/console/audit", Section::Audit, NODE_ADMINS),
    ("/console/dead-letters", Section::DeadLetters, NODE_ADMINS),
    ("/console/subscriptions", Section::Subscriptions, SUBSCRIPTION_READERS),
    ("/console/me", Section::Me, &Role::ALL),
];

/// What each group of roles may do, in words, for the page that says so.
pub fn permissions(t: &Texts) -> [(&'static str, &'static [Role]); 9] {
    [
        (t.perm_read, READERS),
        (t.perm_write, WRITERS),
        (t.perm_agreements_read, AGREEMENT_READERS),
        (t.perm_preview, PREVIEWERS),
        (t.perm_agreements_admin, AGREEMENT_ADMINS),
        (t.perm_node_admin, NODE_ADMINS),
        (t.perm_subscriptions, SUBSCRIPTION_READERS),
        (t.perm_requests_read, REQUEST_READERS),
        (t.perm_requests, REQUESTERS),
    ]
}

impl Chrome {
    /// The frame for a signed-in person with `roles`, on a page of `section`.
    pub fn signed_in(
        lang: Lang,
        node_name: &str,
        actor: &str,
        roles: &BTreeSet<Role>,
        csrf: String,
        section: Section,
        here: String,
    ) -> Chrome {
        let t = lang.texts();
        let label = |section: Section| match section {
            Section::Picture => t.nav_picture,
            Section::NewReport => t.nav_new_report,
            Section::Patrol => t.nav_patrol,
            Section::Agreements => t.nav_agreements,
            Section::Partners => t.nav_partners,
            Section::Audit => t.nav_audit,
            Section::DeadLetters => t.nav_dead_letters,
            Section::Subscriptions => t.nav_subscriptions,
            Section::Requests => t.nav_requests,
            Section::Me | Section::None => t.nav_me,
        };
        let nav = MENU
            .iter()
            .filter(|(_, _, allowed)| allowed.iter().any(|r| roles.contains(r)))
            .map(|(href, s, _)| NavItem { href, label: label(*s), current: *s == section })
            .collect();
        let roles: Vec<Role> = roles.iter().copied().collect();
        Chrome {
            t,
            lang,
            node_name: node_name.to_owned(),
            user: Some(User { actor: actor.to_owned(), roles: t.roles_list(&roles), csrf }),
            nav,
            here,
            alerts: Vec::new(),
        }
    }

    /// The frame for someone not signed in (the sign-in page).
    pub fn signed_out(lang: Lang, node_name: &str, here: String) -> Chrome {
        Chrome {
            t: lang.texts(),
            lang,
            node_name: node_name.to_owned(),
            user: None,
            nav: Vec::new(),
            here,
            alerts: Vec::new(),
        }
    }

    /// The form token, or nothing for a signed-out frame.
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }

    /// Where the language switch leads: the other language, back to this page.
    pub fn switch_href(&self) -> String {
        format!("/console/lang/{}?next={}", self.lang.other().code(), url_encode(&self.here))
    }
}

/// The page that names what an action will do before it is done (signing, revoking, blocking),
/// with an optional reason, and a way back.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub heading: String,
    pub consequence: &'static str,
    pub action: String,
    pub button: &'static str,
    pub button_class: &'static str,
    pub reason: bool,
    pub back: String,
}

/// A rendered page with status `status`.
pub fn html(status: StatusCode, page: &impl Template) -> Result<HttpResponse, ConsoleError> {
    let body = page.render().map_err(|e| ConsoleError::internal(format!("a template failed to render: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Pages show reports and names: no shared cache may keep them, nor the browser's history.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A redirect after a form was handled (303: the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Why a console page could not be shown.
#[derive(Debug)]
pub enum ConsoleError {
    /// Nobody is signed in (or the session ended): to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// A page of its own saying what went wrong, in the reader's language.
    Page { status: StatusCode, lang: Lang, title: &'static str, detail: String },
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::SignIn { next } => write!(f, "sign in first (then {next})"),
            ConsoleError::Page { status, detail, .. } => write!(f, "{status}: {detail}"),
        }
    }
}

impl ConsoleError {
    /// An error of the API's operations, told in `lang`; an internal cause is logged, never shown.
    pub fn from_api(error: ApiError, lang: Lang) -> ConsoleError {
        let status = error.status_code();
        let t = lang.texts();
        if let ApiError::Internal(cause) = &error {
            tracing::error!(cause = %cause, "internal error on a console page");
        }
        ConsoleError::Page { status, lang, title: t.error_title(status.as_u16()), detail: error.problem().detail }
    }

    /// Refused for the reader's roles: which role it needs, and which they have.
    pub fn role(lang: Lang, needed: &[Role], held: &BTreeSet<Role>) -> ConsoleError {
        let t = lang.texts();
        let held: Vec<Role> = held.iter().copied().collect();
        let held = if held.is_empty() { t.none.to_owned() } else { t.roles_list(&held) };
        ConsoleError::Page {
            status: StatusCode::FORBIDDEN,
            lang,
            title: t.error_403,
            detail: t.role_needed.replace("{needed}", &t.roles_or(needed)).replace("{held}", &held),
        }
    }

    /// A page of the reader's language with `status` and a detail of the console's own.
    pub fn page(status: StatusCode, lang: Lang, detail: &str) -> ConsoleError {
        ConsoleError::Page { status, lang, title: lang.texts().error_title(status.as_u16()), detail: detail.to_owned() }
    }

    /// A fault of the node itself: logged with its cause, shown as "something went wrong".
    pub fn internal(cause: String) -> ConsoleError {
        ConsoleError::from_api(ApiError::Internal(cause), Lang::En)
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    lang: Lang,
    title: &'a str,
    detail: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn { next } => see_other(&format!("/console/signin?next={}", url_encode(next))),
            ConsoleError::Page { status, lang, title, detail } => {
                let page = ErrorPage { t: lang.texts(), lang: *lang, title, detail };
                match page.render() {
                    Ok(body) => {
                        let mut response = HttpResponse::build(*status);
                        response
                            .content_type("text/html; charset=utf-8")
                            .insert_header((header::CACHE_CONTROL, "no-store"));
                        // Also where the console's scope does not add them (its default service).
                        for header in super::security_headers(&super::content_security_policy(None)) {
                            response.insert_header(header);
                        }
                        response.body(body)
                    }
                    Err(error) => {
                        tracing::error!(%error, "the error page failed to render");
                        HttpResponse::build(*status).content_type("text/plain; charset=utf-8").body(detail.clone())
                    }
                }
            }
        }
    }
}
