//! The console's two languages, Swedish and English: which one a request gets (the switch's cookie,
//! else the browser's `Accept-Language`), and every text of every page in both, side by side in
//! one table so that neither can lack a text the other has. The seeds' own terms are the Swedish
//! words (lägesbild, trygghetsöverenskommelse, säkerhetsombud).

use std::borrow::Borrow;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::domain::request::{RequestStatus, StepKind};
use crate::domain::{Category, PersonRole, Role, Severity, SiteKind, Status, Tlp};

/// The cookie that keeps the language a person switched to.
pub const LANG_COOKIE: &str = "lagesbild_lang";

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sv,
    En,
}

impl Lang {
    /// The language of a request: the switch's cookie, else the first of the browser's languages
    /// the console speaks (the Scandinavian ones read Swedish), else English.
    pub fn of(req: &HttpRequest) -> Lang {
        if let Some(lang) = req.cookie(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
            return lang;
        }
        let accepted = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut ranked: Vec<(f32, Lang)> = accepted
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim().to_ascii_lowercase();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                let primary = tag.split('-').next().unwrap_or("");
                let lang = match primary {
                    "sv" | "nb" | "nn" | "no" | "da" => Lang::Sv,
                    "en" => Lang::En,
                    _ => return None,
                };
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The BCP 47 tag, for `<html lang>` and dates.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// The other language: the one the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Sv => Lang::En,
            Lang::En => Lang::Sv,
        }
    }

    /// The language's name in itself.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Sv => "Svenska",
            Lang::En => "English",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Sv => &SV,
            Lang::En => &EN,
        }
    }
}

/// Declares [`Texts`] and its two instances from one table of `key: "svenska", "English";`.
macro_rules! texts {
    ($($key:ident: $sv:literal, $en:literal;)+) => {
        /// Every text of the console in one language.
        #[derive(Debug)]
        pub struct Texts {
            pub lang: Lang,
            $(pub $key: &'static str,)+
        }

        static SV: Texts = Texts { lang: Lang::Sv, $($key: $sv,)+ };
        static EN: Texts = Texts { lang: Lang::En, $($key: $en,)+ };
    };
}

texts! {
    // The frame of every page.
    skip_to_content: "Hoppa till innehållet", "Skip to the content";
    nav_label: "Huvudmeny", "Main menu";
    nav_picture: "Lägesbild", "Situation picture";
    nav_new_report: "Ny rapport", "New report";
    nav_patrol: "Patrullblad", "Patrol sheet";
    nav_agreements: "Överenskommelser", "Agreements";
    nav_partners: "Partner", "Partners";
    nav_audit: "Granskningslogg", "Audit trail";
    nav_dead_letters: "Avvisade försändelser", "Refused envelopes";
    nav_subscriptions: "Webhooks", "Webhooks";
    nav_requests: "Förfrågningar", "Requests";
    nav_me: "Min behörighet", "What I may do";
    sign_out: "Logga ut", "Sign out";
    signed_in_as: "Inloggad som", "Signed in as";
    footer_licences: "Licenser för kartbiblioteken", "Licences of the map libraries";
    footer_api: "API-dokumentation", "API documentation";
    yes: "ja", "yes";
    no: "nej", "no";
    none: "inga", "none";
    never: "aldrig", "never";
    cancel: "Avbryt", "Cancel";
    back_to_picture: "Till lägesbilden", "To the situation picture";
    next_page: "Nästa sida", "Next page";
    show: "Visa", "Show";
    // Roles, after the seeds' security organisation.
    role_reporter: "säkerhetsombud (rapportör)", "security representative (reporter)";
    role_coordinator: "säkerhetssamordnare", "security coordinator";
    role_analyst: "analytiker", "analyst";
    role_agreement_admin: "avtalsansvarig", "agreement administrator";
    role_node_admin: "nodadministratör", "node administrator";
    // Errors.
    error_400: "Begäran kunde inte läsas", "The request could not be read";
    error_403: "Inte tillåtet för din roll", "Not allowed for your role";
    error_404: "Finns inte", "Not found";
    error_409: "Går inte just nu", "Not possible now";
    error_412: "Rapporten har ändrats", "The report has changed";
    error_413: "För stort", "Too large";
    error_422: "Uppgifterna behöver rättas", "The values need correcting";
    error_429: "För många förfrågningar", "Too many requests";
    error_503: "Inte tillgängligt just nu", "Not available right now";
    error_500: "Något gick fel", "Something went wrong";
    error_other: "Fel", "Error";
    role_needed: "Det här kräver rollen {needed}. Du är inloggad med {held}.", "This needs the role {needed}. You are signed in with {held}.";
    page_missing: "Det finns ingen sida här.", "There is no page here.";
    report_missing: "Det finns ingen sådan rapport i er lägesbild.", "There is no such report in your situation picture.";
    form_expired: "Formuläret är för gammalt eller kom inte från den här noden. Ladda om sidan och försök igen.", "The form is too old or did not come from this node. Reload the page and try again.";
    // Signing in.
    signin_title: "Logga in", "Sign in";
    signin_intro: "Logga in för att se och dela lägesbilden.", "Sign in to see and share the situation picture.";
    signin_with_provider: "Logga in med organisationens inloggning", "Sign in with the organisation's sign-in";
    signin_with_token: "Logga in med nodens utvecklingsnyckel", "Sign in with the node's development token";
    signin_token_help: "Nyckeln skrivs ut när noden startar (och finns i demo/nodes.json för demon).", "The token is printed when the node starts (and is in demo/nodes.json for the demo).";
    signin_token: "Nyckel", "Token";
    signin_as: "Logga in som", "Sign in as";
    signin_button: "Logga in", "Sign in";
    signin_wrong_token: "Nyckeln gäller inte för den här noden.", "The token is not valid for this node.";
    signin_code_used: "Inloggningslänken har redan använts eller gått ut. Logga in här i stället.", "The sign-in link has been used already or has expired. Sign in here instead.";
    signin_unavailable: "Den här noden har ingen inloggning för personer: varken [auth] med client_id eller api.dev_token är satt.", "This node has no sign-in for people: neither [auth] with client_id nor api.dev_token is set.";
    signin_pick_role: "Välj minst en roll.", "Choose at least one role.";
    // What a person may do.
    me_title: "Du och din behörighet", "You and what you may do";
    me_may: "Du får", "You may";
    me_may_not: "Du får inte", "You may not";
    perm_read: "läsa rapporter och lägesbilden", "read reports and the situation picture";
    perm_write: "registrera, ändra och återkalla rapporter (ett säkerhetsombud bara sina egna)", "file, change and retract reports (a security representative only their own)";
    perm_agreements_read: "läsa överenskommelser", "read agreements";
    perm_preview: "förhandsvisa vad en partner får se", "preview what a partner receives";
    perm_agreements_admin: "föreslå, underteckna och säga upp överenskommelser", "propose, sign and revoke agreements";
    perm_node_admin: "hantera partner och läsa granskningsloggen", "manage partners and read the audit trail";
    perm_subscriptions: "se och ta bort webhooks", "see and delete webhooks";
    perm_requests_read: "se förfrågningar till och från partner", "see requests to and from partners";
    perm_requests: "skicka och besvara förfrågningar", "send and answer requests";
    // The situation picture.
    picture_title: "Lägesbild", "Situation picture";
    filters: "Urval", "Filters";
    window: "Tidsfönster", "Time window";
    last_1h: "Senaste timmen", "Last hour";
    last_6h: "6 timmar", "6 hours";
    last_24h: "24 timmar", "24 hours";
    last_7d: "7 dygn", "7 days";
    custom_window: "Från–till", "From–to";
    from: "Från", "From";
    until: "Till", "Until";
    category: "Kategori", "Category";
    min_severity: "Lägsta allvarlighetsgrad", "Least severity";
    any_severity: "alla", "any";
    status: "Status", "Status";
    any_status: "alla", "any";
    origin: "Från partner", "Origin partner";
    source: "Egna och mottagna", "Own and received";
    source_all: "båda", "both";
    source_own: "egna", "own";
    source_received: "mottagna", "received";
    apply_filters: "Visa urvalet", "Apply";
    map_label: "Karta över lägesbilden", "Map of the situation picture";
    list_heading: "Rapporter i kartans utsnitt", "Reports in the map's view";
    list_empty: "Inga rapporter i utsnittet.", "No reports in the view.";
    list_without_point: "utan punkt på kartan (bara kommun)", "without a point on the map (municipality only)";
    live_connecting: "Ansluter…", "Connecting…";
    live_on: "Uppdateras direkt", "Updating live";
    live_off: "Direktuppdatering avbruten; försöker igen", "Live updates interrupted; retrying";
    map_plain: "Ingen kartbakgrund är inställd (console.tile_url): kartan visas på enkel bakgrund.", "No map background is set (console.tile_url): the map is drawn on a plain background.";
    own_report: "egen", "own";
    received_from: "från", "from";
    cell_square: "{m} m-ruta", "{m} m square";
    in_municipality: "kommun {code}", "municipality {code}";
    time_hidden: "tid ej delad", "time not shared";
    shown_count: "{n} visas", "{n} shown";
    // Reports.
    new_report_title: "Ny rapport", "New report";
    edit_report_title: "Ändra rapport", "Change report";
    field_category: "Kategori", "Category";
    field_severity: "Allvarlighetsgrad", "Severity";
    alerts_label: "Larm", "Alerts";
    alert_urgent: "Brådskande:", "Urgent:";
    alert_seen: "Sett", "Seen";

    // Requests between partners.
    requests_title: "Förfrågningar till och från partner", "Requests to and from partners";
    requests_intro: "Be en partner om något – en patrull, film från en kamera, upplysningar – där en överenskommelse tillåter det. Partnern bekräftar, åtar sig eller avböjer, svarar och avslutar; ni ser båda samma tråd.", "Ask a partner for something (a patrol, camera footage, information) where an agreement allows it. The partner acknowledges, accepts or declines, answers and closes it; you both see the same thread.";
    requests_none: "Inga förfrågningar ännu.", "No requests yet.";
    request_sent: "Skickad", "Sent";
    request_received: "Mottagen", "Received";
    request_direction: "Riktning", "Direction";
    request_partner: "Partner", "Partner";
    request_subject: "Vad ni ber om", "What you ask for";
    request_details: "Mer om det", "Details";
    request_status: "Läge", "Status";
    request_due: "Svar senast", "Answer by";
    request_overdue: "Försenad", "Overdue";
    request_updated: "Senast ändrad", "Last change";
    request_new: "Ny förfrågan", "New request";
    request_to: "Till", "To";
    request_report: "Rapportens id (valfritt)", "The report's id (optional)";
    request_report_help: "En egen rapport följer med i den form överenskommelsen ger partnern; en rapport partnern delat med er nämns bara.", "One of your reports goes along in the form the agreement gives the partner; one the partner shared with you is only named.";
    request_site: "Plats", "Place";
    request_no_site: "Ingen särskild plats", "No particular place";
    request_window_from: "Tid det gäller, från", "Time it concerns, from";
    request_window_until: "till", "until";
    request_send: "Skicka förfrågan", "Send the request";
    request_nobody: "Ingen aktiv överenskommelse låter er skicka förfrågningar. Ett flöde från er till partnern måste tillåta det (requests = true), undertecknat av båda.", "No active agreement lets you send requests. A flow from you to the partner must allow it (requests = true), signed by both.";
    request_asked_by: "Frågad av", "Asked by";
    request_agreement: "Överenskommelse", "Agreement";
    request_about_report: "Gäller rapport", "About report";
    request_thread: "Tråden", "The thread";
    request_no_steps: "Partnern har inte svarat ännu.", "The partner has not answered yet.";
    request_delivery: "Leverans", "Delivery";
    request_delivery_queued: "på väg till partnern", "on its way to the partner";
    request_delivery_delivered: "levererad", "delivered";
    request_delivery_refused: "avvisad av partnern", "refused by the partner";
    request_step_text: "Svar, skäl eller anteckning", "Answer, reason or note";
    request_next_step: "Nästa steg", "Next step";
    request_ask_about: "Fråga en partner om detta", "Ask a partner about this";
    request_status_open: "öppen", "open";
    request_status_acknowledged: "mottagen, läses", "acknowledged";
    request_status_accepted: "åtagen", "accepted";
    request_status_declined: "avböjd", "declined";
    request_status_answered: "besvarad", "answered";
    request_status_done: "avslutad", "done";
    request_do_acknowledged: "Bekräfta att ni sett den", "Acknowledge";
    request_do_accepted: "Åta er den", "Accept";
    request_do_declined: "Avböj (ange skäl)", "Decline (give the reason)";
    request_do_answered: "Svara", "Answer";
    request_do_done: "Avsluta", "Close";
    field_urgent: "Brådskande larm", "Urgent alert";
    field_urgent_hint: "Till exempel pågående dödligt våld. Skickas före allt annat och visas som larm hos mottagarna tills någon kvitterat. Kritiska händelser larmar alltid.", "For instance ongoing deadly violence. Sent ahead of everything else and shown to the receivers as an alert until someone acknowledges it. Critical reports always alert.";
    field_status: "Status", "Status";
    field_observed_at: "När hände det", "When did it happen";
    field_observed_until: "Till (om det pågick en tid)", "Until (if it lasted)";
    field_title: "Vad hände (rubrik)", "What happened (headline)";
    field_description: "Beskrivning", "Description";
    field_where: "Var", "Where";
    field_lat: "Latitud", "Latitude";
    field_lon: "Longitud", "Longitude";
    where_help: "Tryck på kartan, använd din position eller välj en av organisationens platser.", "Tap the map, use your position, or pick one of the organisation's sites.";
    use_my_position: "Använd min position", "Use my position";
    position_failed: "Positionen kunde inte hämtas.", "The position could not be found.";
    field_org_site: "Organisationens plats", "The organisation's site";
    no_org_site: "(ingen)", "(none)";
    field_site_kind: "Typ av plats", "Kind of site";
    field_site_name: "Anläggningens namn", "Name of the site";
    field_place_name: "Platsnamn", "Place name";
    field_address: "Adress", "Address";
    field_municipality: "Kommunkod", "Municipality code";
    field_actions: "Vad gjordes", "What was done";
    field_action_by: "Av vem", "By whom";
    field_persons: "Inblandade personer", "Persons involved";
    person_role: "Roll", "Role";
    person_name: "Namn (frivilligt)", "Name (optional)";
    person_age: "Ålder (frivilligt)", "Age (optional)";
    person_description: "Signalement (frivilligt)", "Description (optional)";
    add_person: "Lägg till person", "Add a person";
    field_tlp: "Delningsmärkning (TLP)", "Sharing marking (TLP)";
    tlp_clear: "TLP:CLEAR – får spridas fritt", "TLP:CLEAR – no limit";
    tlp_green: "TLP:GREEN – inom samverkan", "TLP:GREEN – within the community";
    tlp_amber: "TLP:AMBER – mottagarens organisation, vid behov", "TLP:AMBER – the recipient's organisation, need to know";
    tlp_amber_strict: "TLP:AMBER+STRICT – bara mottagarens organisation", "TLP:AMBER+STRICT – the recipient's organisation only";
    tlp_red: "TLP:RED – lämnar aldrig noden", "TLP:RED – never leaves the node";
    field_expires_at: "Inaktuell efter (frivilligt)", "No longer current after (optional)";
    submit_file: "Registrera rapporten", "File the report";
    submit_update: "Spara som ny version", "Save as a new version";
    form_has_errors: "Rätta det som är markerat nedan. Inget har sparats.", "Correct what is marked below. Nothing has been saved.";
    stale_version: "Någon annan har ändrat rapporten under tiden (nu version {v}). Ladda om och gör ändringen igen.", "Someone else changed the report meanwhile (now version {v}). Reload and make the change again.";
    recipients_heading: "Vem får rapporten och vad ser de", "Who receives it and what each sees";
    recipients_intro: "Beräknat av samma policymotor som delningen, utifrån överenskommelserna som gäller nu.", "Computed by the same policy engine as the exchange, from the agreements in force now.";
    recipients_none: "Ingen partner får rapporten.", "No partner receives this report.";
    recipients_incomplete: "Fyll i {fields} så visas vem som får rapporten.", "Fill in {fields} to see who receives the report.";
    recipients_refresh: "Uppdatera förhandsvisningen", "Update the preview";
    recipients_no_federation: "Noden delar inte med någon (ingen federation är inställd).", "This node shares with nobody (no federation is configured).";
    recipient_gets: "får", "receives";
    recipient_gets_nothing: "får inget", "receives nothing";
    recipient_sees: "Ser:", "Sees:";
    recipient_misses: "Ser inte:", "Does not see:";
    recipient_field_by_field: "Fält för fält, med regeln som avgjorde", "Field by field, with the rule that decided";
    recipient_withdrawn: "får besked om att rapporten dras tillbaka", "is told the report is withdrawn";
    under_agreement: "enligt", "under";
    decision_field: "Fält", "Field";
    decision_rule: "Regel", "Rule";
    decision_effect: "Vad mottagaren ser", "What the recipient sees";
    effect_kept: "visas", "shown";
    rule_always: "alltid", "always";
    effect_dropped: "tas bort", "left out";
    effect_generalised: "generaliseras", "generalised";
    effect_empty: "(inget värde)", "(no value)";
    report_heading: "Rapport", "Report";
    report_version: "Version", "Version";
    report_by: "Av", "By";
    report_retracted: "Återkallad", "Retracted";
    report_edit: "Ändra", "Change";
    report_retract: "Återkalla", "Retract";
    retract_title: "Återkalla rapporten", "Retract the report";
    held_heading: "Väntar på frisläppning", "Waiting for release";
    held_intro: "Inget av rapporten har lämnat noden. En samordnare (inte den som skrev versionen) släpper den till partnerna eller avslår.", "Nothing of the report has left the node. A coordinator (not whoever wrote this version) releases it to the partners or refuses.";
    held_refused: "Frisläppning avslogs", "Release refused";
    held_reason: "Varför den hålls", "Why it is held";
    held_written_by: "Versionen skrevs av", "This version was written by";
    held_decided_by: "Beslut av", "Decided by";
    held_release: "Släpp till partnerna", "Release to the partners";
    held_refuse: "Avslå", "Refuse";
    held_refuse_reason: "Varför (visas för den som skrev)", "Why (shown to whoever wrote it)";
    held_badge: "hålls", "held";
    retract_consequence: "Rapporten försvinner ur lägesbilden här och hos alla partner som har fått den. Versionerna finns kvar för er egen historik.", "The report leaves the situation picture here and at every partner that received it. Its versions stay for your own record.";
    retract_reason: "Varför (visas för partnerna)", "Why (shown to the partners)";
    retract_confirm: "Återkalla", "Retract";
    versions_heading: "Alla versioner", "Every version";
    sharing_heading: "Delningsliggare", "Sharing ledger";
    seen_by_heading: "Larmet sett av", "Alert seen by";
    seen_by_none: "Ingen partner har kvitterat larmet ännu.", "No partner has acknowledged the alert yet.";
    sharing_none: "Rapporten har inte delats med någon.", "The report has not been shared with anyone.";
    share_recipient: "Mottagare", "Recipient";
    share_agreement: "Överenskommelse", "Agreement";
    share_hash: "Kontrollsumma (SHA-256)", "Hash (SHA-256)";
    share_state: "Läge", "State";
    share_queued: "i kö", "queued";
    share_delivered: "kvitterad", "acknowledged";
    share_refused: "avvisad", "refused";
    share_cancelled: "avbruten (överenskommelsen upphörde)", "cancelled (the agreement ended)";
    share_attempts: "Försök", "Attempts";
    share_error: "Senaste fel", "Last error";
    received_heading: "Mottagen rapport", "Received report";
    received_intro: "Så här delade {origin} rapporten med er, enligt {agreement}. Det som inte delades syns inte.", "This is how {origin} shared the report with you, under {agreement}. What was not shared is not shown.";
    persons_roles_only: "bara roller", "roles only";
    persons_pseudonymous: "pseudonymer", "pseudonyms";
    may_share_onwards: "Får delas vidare", "May be shared onwards";
    // Agreements.
    agreements_title: "Överenskommelser", "Agreements";
    agreements_intro: "Trygghetsöverenskommelser och samverkansavtal som den här noden är part i. Inget delas utan en överenskommelse som alla parter har undertecknat.", "Safety agreements this node is a party to. Nothing is shared without an agreement every party has signed.";
    agreements_none: "Noden är inte part i någon överenskommelse än.", "This node is not a party to any agreement yet.";
    agreement_state: "Läge", "State";
    state_active: "gäller", "in force";
    state_awaiting_signatures: "väntar på underskrifter", "awaiting signatures";
    state_not_yet_valid: "börjar gälla senare", "not yet in force";
    state_expired: "har löpt ut", "expired";
    state_revoked: "uppsagd", "revoked";
    state_declined: "avböjd", "declined";
    state_framework_inactive: "ramavtalet gäller inte", "its framework is not in force";
    state_unverifiable: "kan inte kontrolleras", "cannot be verified";
    status_revoked: "Uppsagd av {who} {when}", "Revoked by {who} {when}";
    status_declined: "Avböjd av {who} {when}", "Declined by {who} {when}";
    status_framework: "Ramavtalet {framework} gäller inte, så inget delas under den här.", "Its framework {framework} is not in force, so nothing is shared under this one.";
    status_awaiting: "{n} av {m} parter har undertecknat.", "{n} of {m} parties have signed.";
    status_not_started: "Undertecknad av alla parter; börjar gälla {when}.", "Signed by every party; comes into force {when}.";
    status_expired: "Upphörde {when}.", "Ended {when}.";
    status_active: "Undertecknad av alla parter; gäller till {when}.", "Signed by every party; in force until {when}.";
    propose_agreement: "Föreslå en överenskommelse", "Propose an agreement";
    propose_intro: "Ladda upp en TOML-fil, klistra in den, eller utgå från en mall. Noden fyller i parternas nycklar från deras nodkort, undertecknar och skickar förslaget till de andra parterna.", "Upload a TOML file, paste it, or start from a template. The node fills in the parties' keys from their node cards, signs, and sends the proposal to the other parties.";
    propose_template: "Mall", "Template";
    propose_template_none: "(ingen: skriv eller ladda upp)", "(none: write or upload)";
    propose_use_template: "Använd mallen", "Use the template";
    propose_file: "TOML-fil", "TOML file";
    propose_text: "Överenskommelsen (TOML)", "The agreement (TOML)";
    propose_button: "Föreslå och underteckna", "Propose and sign";
    agreement_purpose: "Syfte", "Purpose";
    agreement_parties: "Parter", "Parties";
    agreement_signed: "har undertecknat", "has signed";
    agreement_awaiting: "har inte undertecknat", "has not signed";
    agreement_valid: "Gäller", "Valid";
    agreement_evaluation: "Utvärderas", "Evaluated on";
    agreement_retention: "Mottagna rapporter sparas", "Received reports are kept";
    days: "dagar", "days";
    agreement_framework: "Ramavtal", "Framework agreement";
    agreement_flows: "Vad som delas", "What is shared";
    flow_categories: "Kategorier", "Categories";
    flow_area: "Område", "Area";
    flow_area_anywhere: "överallt", "anywhere";
    flow_area_box: "inom en rektangel", "within a rectangle";
    flow_area_polygon: "inom ett område", "within an area";
    flow_area_municipalities: "i kommunerna {codes}", "in municipalities {codes}";
    flow_min_severity: "Från allvarlighetsgrad", "From severity";
    flow_max_tlp: "Högst", "At most";
    flow_onward: "Får delas vidare", "May be shared onwards";
    flow_field: "Fält", "Field";
    flow_sees: "Mottagaren ser", "The recipient sees";
    what_sees_heading: "Vad ser en partner av en av era rapporter?", "What does a partner see of one of your reports?";
    what_sees_report: "Rapport", "Report";
    what_sees_recipient: "Partner", "Partner";
    what_sees_no_reports: "Ni har inga aktuella rapporter att förhandsvisa.", "You have no current reports to preview.";
    agreement_sign: "Underteckna", "Sign";
    agreement_held_framework: "Ramavtal som noden håller för sina lokala avtal. Organisationen är inte part i det: dess parter undertecknar och säger upp det, och inget delas under det här.", "A framework this node holds for its local agreements. The organisation is no party to it: its parties sign and revoke it, and nothing is shared under it here.";
    agreement_revoke: "Säg upp", "Revoke";
    agreement_decline: "Avböj", "Decline";
    sign_consequence: "När alla parter har undertecknat börjar överenskommelsen gälla, och noden delar då det som flödena ovan anger med de andra parterna.", "Once every party has signed, the agreement comes into force, and the node then shares what the flows above say with the other parties.";
    revoke_consequence: "Överenskommelsen upphör genast för alla parter. Inget mer delas under den, det som ligger i kö stoppas, och alla parter raderar det de har fått under den.", "The agreement ends at once for every party. Nothing more is shared under it, what is queued is stopped, and every party deletes what it received under it.";
    decline_consequence: "Förslaget kan inte längre börja gälla. Alla parter får besked.", "The proposal can no longer come into force. Every party is told.";
    confirm_reason: "Skäl (frivilligt, visas för parterna)", "Reason (optional, shown to the parties)";
    // Partners.
    partners_title: "Partner", "Partners";
    partners_intro: "Noder som den här noden känner genom deras nodkort. Bara partner som inte är blockerade kommer igenom TLS-handskakningen.", "Nodes this node knows by their cards. Only partners that are not blocked get through the TLS handshake.";
    partners_none: "Inga partner ännu: importera en partners nodkort nedan.", "No partners yet: import a partner's node card below.";
    partner_org: "Organisation", "Organisation";
    partner_last_contact: "Senaste kontakt", "Last contact";
    partner_queue: "I kö", "Queued";
    partner_last_delivery: "Senaste leverans", "Last delivery";
    partner_last_error: "Senaste fel", "Last error";
    partner_unreachable: "Partnerns nod gick inte att nå (den kan vara nere, eller adressen fel).", "The partner's node could not be reached (it may be down, or its address wrong).";
    partner_tls: "TLS-handskakningen misslyckades: nycklarna stämmer inte (har partnern bytt nycklar?).", "The TLS handshake failed: the keys do not match (has the partner changed its keys?).";
    partner_timeout: "Partnerns nod svarade inte i tid.", "The partner's node did not answer in time.";
    partner_busy: "Partnerns nod var upptagen och bad oss vänta; leveransen görs om.", "The partner's node was busy and asked us to wait; delivery is retried.";
    partner_refused_envelope: "Partnern avvisade en försändelse:", "The partner refused an envelope:";
    technical_detail: "Tekniska detaljer", "Technical detail";
    partner_blocked: "blockerad", "blocked";
    partner_block: "Blockera", "Block";
    partner_unblock: "Häv blockering", "Unblock";
    block_consequence: "Partnerns nod nekas redan vid TLS-handskakningen: den kan varken leverera hit eller hämta något, tills blockeringen hävs. Det som ska till partnern väntar i kön.", "The partner's node is refused at the TLS handshake: it can neither deliver here nor fetch anything until it is unblocked. What is owed to it waits in the queue.";
    unblock_consequence: "Partnerns nod släpps in igen, och det som väntar i kön levereras.", "The partner's node is let in again, and what waits in the queue is delivered.";
    import_card: "Importera ett nodkort", "Import a node card";
    import_card_help: "Klistra in kortet (JSON) eller ladda upp filen node-card.json som partnern har gett er. Kortets signatur kontrolleras; ingen adress i det hämtas.", "Paste the card (JSON) or upload the node-card.json file the partner gave you. The card's signature is checked; no address in it is fetched.";
    card_text: "Nodkortet (JSON)", "The node card (JSON)";
    card_file: "eller filen", "or the file";
    import_button: "Importera", "Import";
    // Audit.
    audit_title: "Granskningslogg", "Audit trail";
    audit_intro: "Allt noden har gjort, som en hashkedja av id:n och kontrollsummor, aldrig innehåll.", "Everything the node did, as a hash chain of ids and hashes, never contents.";
    audit_verify: "Kontrollera hela kedjan", "Verify the whole chain";
    audit_verified: "Kedjan är hel: {n} poster kontrollerade.", "The chain is intact: {n} entries checked.";
    audit_broken: "Kedjan är bruten vid post {seq}: {why}", "The chain is broken at entry {seq}: {why}";
    audit_event: "Händelse", "Event";
    audit_actor: "Vem", "Who";
    audit_at: "När", "When";
    audit_partner: "Partner", "Partner";
    audit_report: "Rapport", "Report";
    audit_agreement: "Överenskommelse", "Agreement";
    audit_detail: "Detaljer", "Detail";
    audit_none: "Inga poster matchar.", "No entries match.";
    dead_letters_title: "Avvisade försändelser", "Refused envelopes";
    dead_letters_intro: "Försändelser från partner som noden avvisade, med skälet. De påverkar inte resten av leveransen.", "Envelopes from partners that this node refused, with the reason. They do not hold up the rest of a delivery.";
    dead_letters_none: "Inga avvisade försändelser.", "No refused envelopes.";
    dead_letter_reason: "Skäl", "Reason";
    // Webhooks.
    subscriptions_title: "Webhooks", "Webhooks";
    subscriptions_intro: "Partnersystem som får lägesbildens ändringar, signerade enligt Standard Webhooks. De registreras via API:t.", "Partner systems that receive the picture's changes, signed per Standard Webhooks. They are registered through the API.";
    subscriptions_none: "Inga webhooks.", "No webhooks.";
    subscription_target: "Mål", "Target";
    subscription_queue: "I kö", "Queued";
    subscription_dropped: "Tappade", "Dropped";
    subscription_last_success: "Senast levererad", "Last delivered";
    subscription_delete: "Ta bort", "Delete";
    // The patrol sheet.
    patrol_title: "Patrullblad", "Patrol sheet";
    patrol_intro: "Lägesbilden för ett tidsfönster och ett område, för utskrift på A4.", "The picture for a time window and an area, to print on A4.";
    patrol_print: "Skriv ut", "Print";
    patrol_area: "Område (min lon, min lat, max lon, max lat)", "Area (min lon, min lat, max lon, max lat)";
    patrol_printed: "Utskrivet", "Printed";
    patrol_count: "{n} rapporter", "{n} reports";
    patrol_more: "Bladet visar de {n} senaste; fönstret rymmer fler. Välj ett kortare fönster eller ett mindre område.", "The sheet shows the latest {n}; the window holds more. Choose a shorter window or a smaller area.";
    patrol_handle: "Innehåller {tlp}: hantera enligt märkningen.", "Contains {tlp}: handle as marked.";
    col_when: "När", "When";
    col_what: "Vad", "What";
    col_where: "Var", "Where";
    col_severity: "Grad", "Severity";
    col_done: "Åtgärd", "Done";
}

impl Texts {
    pub fn role(&self, role: Role) -> &'static str {
        match role {
            Role::Reporter => self.role_reporter,
            Role::Coordinator => self.role_coordinator,
            Role::Analyst => self.role_analyst,
            Role::AgreementAdmin => self.role_agreement_admin,
            Role::NodeAdmin => self.role_node_admin,
        }
    }

    /// Roles in words, joined by "or" / "eller".
    pub fn roles_or(&self, roles: &[Role]) -> String {
        let words: Vec<&str> = roles.iter().map(|r| self.role(*r)).collect();
        words.join(if self.lang == Lang::Sv { " eller " } else { " or " })
    }

    /// Roles in words, comma-separated.
    pub fn roles_list(&self, roles: &[Role]) -> String {
        roles.iter().map(|r| self.role(*r)).collect::<Vec<_>>().join(", ")
    }

    pub fn category(&self, category: impl Borrow<Category>) -> &'static str {
        let category = *category.borrow();
        let (sv, en) = match category {
            Category::Burglary => ("inbrott", "burglary"),
            Category::Vandalism => ("skadegörelse", "vandalism"),
            Category::Theft => ("stöld", "theft"),
            Category::Fire => ("brand", "fire"),
            Category::Threat => ("hot", "threat"),
            Category::Violence => ("våld", "violence"),
            Category::Disorder => ("ordningsstörning", "disorder"),
            Category::SuspiciousActivity => ("misstänkt aktivitet", "suspicious activity"),
            Category::Drugs => ("narkotika", "drugs"),
            Category::Other => ("övrigt", "other"),
        };
        self.pick(sv, en)
    }

    pub fn request_status(&self, status: RequestStatus) -> &'static str {
        match status {
            RequestStatus::Open => self.request_status_open,
            RequestStatus::Acknowledged => self.request_status_acknowledged,
            RequestStatus::Accepted => self.request_status_accepted,
            RequestStatus::Declined => self.request_status_declined,
            RequestStatus::Answered => self.request_status_answered,
            RequestStatus::Done => self.request_status_done,
        }
    }

    /// The button that takes `step`.
    pub fn request_do(&self, step: StepKind) -> &'static str {
        match step {
            StepKind::Acknowledged => self.request_do_acknowledged,
            StepKind::Accepted => self.request_do_accepted,
            StepKind::Declined => self.request_do_declined,
            StepKind::Answered => self.request_do_answered,
            StepKind::Done => self.request_do_done,
        }
    }

    pub fn severity(&self, severity: impl Borrow<Severity>) -> &'static str {
        let severity = *severity.borrow();
        let (sv, en) = match severity {
            Severity::Minor => ("lindrig", "minor"),
            Severity::Moderate => ("måttlig", "moderate"),
            Severity::Severe => ("allvarlig", "severe"),
            Severity::Critical => ("kritisk", "critical"),
        };
        self.pick(sv, en)
    }

    pub fn report_status(&self, status: impl Borrow<Status>) -> &'static str {
        let status = *status.borrow();
        let (sv, en) = match status {
            Status::Ongoing => ("pågår", "ongoing"),
            Status::Resolved => ("avslutad", "resolved"),
        };
        self.pick(sv, en)
    }

    pub fn tlp(&self, tlp: impl Borrow<Tlp>) -> &'static str {
        let tlp = *tlp.borrow();
        match tlp {
            Tlp::Clear => self.tlp_clear,
            Tlp::Green => self.tlp_green,
            Tlp::Amber => self.tlp_amber,
            Tlp::AmberStrict => self.tlp_amber_strict,
            Tlp::Red => self.tlp_red,
        }
    }

    pub fn person_role(&self, role: impl Borrow<PersonRole>) -> &'static str {
        let role = *role.borrow();
        let (sv, en) = match role {
            PersonRole::Victim => ("drabbad", "victim"),
            PersonRole::Suspect => ("misstänkt", "suspect"),
            PersonRole::Witness => ("vittne", "witness"),
            PersonRole::Staff => ("personal", "staff"),
        };
        self.pick(sv, en)
    }

    pub fn site_kind(&self, kind: impl Borrow<SiteKind>) -> &'static str {
        let kind = *kind.borrow();
        let (sv, en) = match kind {
            SiteKind::School => ("skola", "school"),
            SiteKind::Preschool => ("förskola", "preschool"),
            SiteKind::CareHome => ("vårdboende", "care home"),
            SiteKind::YouthCentre => ("fritidsgård", "youth centre"),
            SiteKind::Shop => ("butik", "shop"),
            SiteKind::ShoppingCentre => ("köpcentrum", "shopping centre"),
            SiteKind::Office => ("kontor", "office"),
            SiteKind::PublicSpace => ("offentlig plats", "public space"),
            SiteKind::Transport => ("kollektivtrafik", "transport"),
            SiteKind::Residential => ("bostadsområde", "residential area"),
            SiteKind::Other => ("annan plats", "other"),
        };
        self.pick(sv, en)
    }

    /// A field of a report, as the policy engine's explanation names it.
    pub fn field(&self, field: &str) -> &'static str {
        let (sv, en) = match field {
            "title" => ("rubrik", "headline"),
            "description" => ("beskrivning", "description"),
            "status" => ("status", "status"),
            "observed_at" | "time" => ("tid", "time"),
            "location" => ("plats (punkt)", "location (point)"),
            "place" => ("platsnamn och adress", "place name and address"),
            "place_name" => ("platsnamn", "place name"),
            "address" => ("adress", "address"),
            "site" => ("anläggning", "site"),
            "persons" => ("personer", "persons"),
            "actions" => ("åtgärder", "actions"),
            "category" => ("kategori", "category"),
            "severity" => ("allvarlighetsgrad", "severity"),
            "tlp" => ("TLP-märkning", "TLP marking"),
            "expires_at" => ("inaktuell efter", "expires"),
            "updated_at" => ("senast ändrad", "last changed"),
            "observed_until" => ("pågick till", "lasted until"),
            _ => ("", ""),
        };
        if sv.is_empty() { "?" } else { self.pick(sv, en) }
    }

    /// The state of an agreement, from `AgreementStatus::state`.
    pub fn agreement_state(&self, state: &str) -> &'static str {
        match state {
            "active" => self.state_active,
            "awaiting_signatures" => self.state_awaiting_signatures,
            "not_started" => self.state_not_yet_valid,
            "expired" => self.state_expired,
            "revoked" => self.state_revoked,
            "declined" => self.state_declined,
            "framework_inactive" => self.state_framework_inactive,
            _ => self.state_unverifiable,
        }
    }

    /// The state of an envelope in the sharing ledger.
    pub fn share_state(&self, state: &str) -> &'static str {
        match state {
            "delivered" => self.share_delivered,
            "refused" => self.share_refused,
            "cancelled" => self.share_cancelled,
            _ => self.share_queued,
        }
    }

    /// The title of an error page for an HTTP status.
    pub fn error_title(&self, status: u16) -> &'static str {
        match status {
            400 => self.error_400,
            401 | 403 => self.error_403,
            404 => self.error_404,
            409 => self.error_409,
            412 => self.error_412,
            413 => self.error_413,
            422 => self.error_422,
            429 => self.error_429,
            503 => self.error_503,
            500..=599 => self.error_500,
            _ => self.error_other,
        }
    }

    fn pick(&self, sv: &'static str, en: &'static str) -> &'static str {
        match self.lang {
            Lang::Sv => sv,
            Lang::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(accept: &str) -> HttpRequest {
        actix_web::test::TestRequest::default().insert_header((header::ACCEPT_LANGUAGE, accept)).to_http_request()
    }

    #[test]
    fn the_browsers_first_language_the_console_speaks_wins() {
        assert_eq!(Lang::of(&request("sv-SE,sv;q=0.9,en;q=0.8")), Lang::Sv);
        assert_eq!(Lang::of(&request("en-GB,en;q=0.9,sv;q=0.5")), Lang::En);
        assert_eq!(Lang::of(&request("de-DE,nb;q=0.7,en;q=0.6")), Lang::Sv);
        assert_eq!(Lang::of(&request("de-DE")), Lang::En);
        assert_eq!(Lang::of(&request("sv;q=0, en")), Lang::En);
    }

    #[test]
    fn the_switchs_cookie_wins_over_the_browser() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::ACCEPT_LANGUAGE, "sv"))
            .cookie(actix_web::cookie::Cookie::new(LANG_COOKIE, "en"))
            .to_http_request();
        assert_eq!(Lang::of(&req), Lang::En);
    }
}
