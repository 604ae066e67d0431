//! The API's own description: the OpenAPI document generated from the handlers' annotations, served
//! at `/openapi.json` and browsable at `/docs/` (Swagger UI, served from the binary, no CDN). The same
//! document is committed as `openapi/lagesbild.json`, and a test fails when the two differ.

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpResponse, http::header};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    agreement_templates, agreements, audit, evaluation, frameworks, health, partners, reports, situation, stream,
    subscriptions,
};
use crate::crypto::jws::{Jws, JwsSignature};
use crate::domain::policy::{Effect, FieldDecision};
use crate::domain::view::{
    PseudonymousPerson, ReportView, RoleCount, TimePrecision, ViewLocation, ViewPersons, ViewSite,
};
use crate::domain::{
    Action, CardPin, Category, FieldError, Location, NodeCard, Person, PersonRole, Report, ReportContent, Retraction,
    Severity, Site, SiteKind, Status, Tlp,
};
use crate::http::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lagesbild node API",
        description = "The user API of a lagesbild node: file, update and retract your organisation's situation \
reports, and read the situation picture merged from your own and your partners' reports, as JSON or GeoJSON.\n\n\
Every `/api/v1` route needs `Authorization: Bearer <token>`. Errors are RFC 9457 problem documents \
(`application/problem+json`); validation problems list every refused field under `errors`.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    paths(
        reports::file_report,
        reports::get_report,
        reports::update_report,
        reports::retract_report,
        reports::list_versions,
        reports::get_version,
        super::shares::shares,
        super::release::get_release,
        super::release::release_report,
        super::release::refuse_release,
        super::alerts::list,
        super::alerts::seen,
        super::alerts::seen_by,
        super::requests::create,
        super::requests::list,
        super::requests::get,
        super::requests::take_step,
        super::requests::stream,
        situation::situation,
        stream::stream,
        subscriptions::create,
        subscriptions::list,
        subscriptions::get,
        subscriptions::delete,
        subscriptions::rotate_secret,
        audit::audit,
        super::auth::me,
        agreements::propose,
        agreements::list,
        agreements::get,
        agreements::sign,
        agreements::revoke,
        agreements::decline,
        agreements::preview,
        agreement_templates::list,
        agreement_templates::draft,
        evaluation::evaluation,
        frameworks::document,
        frameworks::import,
        partners::node,
        partners::add_partner,
        partners::list_partners,
        partners::get_partner,
        partners::block_partner,
        partners::unblock_partner,
        super::dead_letters::dead_letters,
        super::login::login,
        super::login::callback,
        super::login::logout,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        Report, ReportContent, Retraction, Location, Site, SiteKind, Person, PersonRole, Action, Category, Severity,
        Status, Tlp, Problem, FieldError, reports::RetractRequest, super::release::Release, super::release::RefuseRequest, super::alerts::AlertOut, super::alerts::AlertList, super::alerts::ReceiptOut, super::alerts::ReceiptList, super::requests::NewRequest, super::requests::NewStep, super::requests::RequestOut, super::requests::StepOut, super::requests::RequestList, super::requests::DeliveryOut, crate::domain::request::RequestPlace, crate::domain::request::TimeWindow, crate::domain::request::StepKind, crate::domain::request::RequestStatus, situation::SituationResponse, situation::Format,
        situation::FeatureCollection, situation::Feature, situation::Point, health::Health, partners::NodeView,
        partners::PartnerView, NodeCard, CardPin, Jws, JwsSignature, agreements::AgreementView, super::auth::Me, crate::domain::Role, audit::AuditPage, crate::domain::audit::AuditEntry,
        crate::domain::audit::AuditEvent,
        agreements::RevokeRequest, crate::picture_feed::Change, stream::StreamReset, stream::StreamData, stream::ServerSentEvent, subscriptions::NewSubscription, subscriptions::SubscriptionView, subscriptions::DeliveryState, crate::domain::watch::Watch, crate::domain::watch::GeoPolygon, crate::domain::Source, agreements::Preview, agreement_templates::TemplateView, agreement_templates::TemplateParty, agreement_templates::Draft, evaluation::EvaluationFormat, crate::domain::evaluation::Evaluation, crate::domain::evaluation::SentRow, crate::domain::evaluation::ReceivedRow, crate::domain::evaluation::Arrival, crate::domain::agreement::template::Adaptation, crate::domain::agreement::template::PartyChange, crate::domain::agreement::AgreementStatus, ReportView, FieldDecision,
        Effect, TimePrecision, ViewLocation, ViewSite, ViewPersons, PseudonymousPerson, RoleCount,
    )),
    modifiers(&BearerAuth, &PictureReportsByName, &OpenPartsOfWholes),
    tags(
        (name = "reports", description = "Your organisation's situation reports and their versions"),
        (name = "situation", description = "The merged situation picture"),
        (name = "alerts", description = "Partners' urgent reports as alerts until someone has seen them; who has seen yours"),
        (name = "requests", description = "Asking partners for something (a patrol, footage, information) where an agreement allows it, and answering what they ask"),
        (name = "agreements", description = "Agreements: propose, review, sign, revoke, preview"),
        (name = "partners", description = "This node's card and the partner nodes it knows"),
        (name = "subscriptions", description = "Webhooks: the picture's changes POSTed to partner systems, signed (Standard Webhooks)"),
        (name = "sign-in", description = "People sign in with the organisation's identity provider"),
        (name = "operations", description = "Health, readiness and metrics for operators"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// A schema made of parts (`allOf`) checks each part against the whole object. Some parts refuse
/// unknown fields, as the node does when it reads them (a report's content, a received view); inside
/// a whole that adds fields (a served report adds its id and version, the picture adds `source`)
/// they would refuse those, so each such part is replaced by a copy that does not refuse them.
struct OpenPartsOfWholes;

impl Modify for OpenPartsOfWholes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else { return };
        let open_copy = |location: &str| match components.schemas.get(location.rsplit('/').next()?) {
            Some(RefOr::T(Schema::Object(part))) if part.additional_properties.is_some() => {
                let mut open = part.clone();
                open.additional_properties = None;
                Some(RefOr::T(Schema::Object(open)))
            }
            _ => None,
        };
        let mut opened = Vec::new();
        for (name, schema) in &components.schemas {
            if let RefOr::T(Schema::AllOf(whole)) = schema {
                for (n, part) in whole.items.iter().enumerate() {
                    if let RefOr::Ref(reference) = part
                        && let Some(open) = open_copy(&reference.ref_location)
                    {
                        opened.push((name.clone(), n, open));
                    }
                }
            }
        }
        for (name, n, open) in opened {
            if let Some(RefOr::T(Schema::AllOf(whole))) = components.schemas.get_mut(&name) {
                whole.items[n] = open;
            }
        }
    }
}

/// A report in the picture is one of two kinds, told apart by `source`. The derived schema holds
/// both inline; client generators (openapi-python-client among them) cannot make a type of an
/// unnamed variant, so each is named (`OwnReport`, `ReceivedReport`) and `source` is declared as
/// the discriminator.
struct PictureReportsByName;

impl Modify for PictureReportsByName {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Discriminator;
        use utoipa::openapi::{Ref, RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else { return };
        let Some(RefOr::T(Schema::OneOf(kinds))) = components.schemas.get_mut("PictureReport") else { return };
        let named = [("own", "OwnReport"), ("received", "ReceivedReport")];
        if kinds.items.len() != named.len() {
            return;
        }
        let variants = std::mem::take(&mut kinds.items);
        let mut discriminator = Discriminator::new("source");
        for (source, name) in named {
            let location = format!("#/components/schemas/{name}");
            kinds.items.push(RefOr::Ref(Ref::new(location.clone())));
            discriminator.mapping.insert(source.to_owned(), location);
        }
        kinds.discriminator = Some(discriminator);
        for ((_, name), variant) in named.into_iter().zip(variants) {
            components.schemas.insert(name.to_owned(), variant);
        }
    }
}

/// The document as committed in `openapi/lagesbild.json`: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

pub(super) fn routes(cfg: &mut ServiceConfig) {
    cfg.service(web::resource("/docs").route(web::get().to(redirect_to_docs)))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", ApiDoc::openapi()));
}

async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}
