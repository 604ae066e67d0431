//! Calling a partner's federation listener: this node presents its TLS certificate and accepts only
//! a server whose key is pinned in the partner's card. One client per partner and identity.

use std::sync::Arc;
use std::time::Duration;

use super::inbox::{EnvelopeResult, EnvelopeResults, FeedPage, URGENT_HEADER};
use super::listener::Hello;
use crate::clock::Clock;
use crate::crypto::jws::Jws;
use crate::crypto::tls::{PeerTrust, TlsIdentity, client_config};
use crate::store::{Lane, PartnerRecord};

/// Why a call to a partner failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up TLS towards {partner}: {reason}")]
    Setup { partner: String, reason: String },
    #[error("{partner} could not be reached: {reason}")]
    Unreachable { partner: String, reason: String },
    #[error("{partner} answered {status}: {detail}")]
    Refused { partner: String, status: u16, detail: String },
}

/// The largest answer to a delivery, and the largest feed page, this node reads.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
const MAX_FEED_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// The largest `hello` answer, and the most of an error answer read (its first 500 characters are
/// kept as the detail).
const MAX_SMALL_ANSWER_BYTES: usize = 64 * 1024;
const MAX_ERROR_BYTES: usize = 16 * 1024;

/// The body of an envelope delivery, as sent.
#[derive(serde::Serialize)]
struct EnvelopeBatchOut<'a> {
    envelopes: &'a [Jws],
}

/// Clients for partners, kept while the partner's card and pins stay the same, so deliveries reuse
/// their connections instead of shaking hands for every batch.
#[derive(Default)]
pub struct ClientCache {
    clients: std::sync::Mutex<std::collections::HashMap<String, (String, PartnerClient)>>,
}

impl ClientCache {
    /// A client for `partner` as it is known now.
    pub fn get(
        &self,
        identity: &TlsIdentity,
        trust: &PeerTrust,
        partner: &PartnerRecord,
        clock: &Arc<dyn Clock>,
    ) -> Result<PartnerClient, ClientError> {
        let now = clock.now();
        let live: Vec<String> = partner
            .pins
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
            .map(|(p, _)| p.as_str().to_owned())
            .collect();
        let version = format!("{}|{}|{}", partner.card, partner.federation_url, live.join(","));
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((known, client)) = clients.get(partner.org_id.as_str())
            && known == &version
        {
            return Ok(client.clone());
        }
        let client = PartnerClient::new(identity, trust, partner, clock)?;
        clients.insert(partner.org_id.to_string(), (version, client.clone()));
        Ok(client)
    }
}

/// A client for one partner.
#[derive(Debug, Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
    base: String,
    partner: String,
}

impl PartnerClient {
    /// A client that presents `identity` and trusts `partner`'s server under `trust` (by the pins
    /// it may present now, or by the authority), judging certificates by `clock`.
    pub fn new(
        identity: &TlsIdentity,
        trust: &PeerTrust,
        partner: &PartnerRecord,
        clock: &Arc<dyn Clock>,
    ) -> Result<Self, ClientError> {
        let now = clock.now();
        let name = partner.org_id.to_string();
        let setup = |reason: String| ClientError::Setup { partner: name.clone(), reason };
        let pins =
            partner.pins.iter().filter(|(_, until)| until.is_none_or(|u| u > now)).map(|(p, _)| p.clone()).collect();
        let tls =
            client_config(identity, trust, &partner.org_id, pins, clock.clone()).map_err(|e| setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self { http, base: partner.federation_url.trim_end_matches('/').to_owned(), partner: name })
    }

    /// Asks the partner who it takes this node for.
    pub async fn hello(&self) -> Result<Hello, ClientError> {
        let response = self
            .http
            .get(format!("{}/federation/v1/hello", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        self.read_json(response, MAX_SMALL_ANSWER_BYTES).await
    }

    /// Sends this node's card to the partner.
    pub async fn push_card(&self, card: &Jws) -> Result<(), ClientError> {
        self.post("/federation/v1/card", card).await
    }

    /// Delivers a batch of envelopes in the ordinary lane; the partner answers for each, in order.
    pub async fn post_envelopes(&self, envelopes: &[Jws]) -> Result<Vec<EnvelopeResult>, ClientError> {
        self.post_envelopes_in(envelopes, Lane::Ordinary).await
    }

    /// Delivers a batch of envelopes in `lane`; the partner answers for each, in order.
    pub async fn post_envelopes_in(&self, envelopes: &[Jws], lane: Lane) -> Result<Vec<EnvelopeResult>, ClientError> {
        let body = EnvelopeBatchOut { envelopes };
        let mut request = self.http.post(format!("{}/federation/v1/envelopes", self.base)).json(&body);
        if lane == Lane::Urgent {
            request = request.header(URGENT_HEADER, "urgent");
        }
        let response = self.check(request.send().await.map_err(|e| self.unreachable(e))?).await?;
        let answer: EnvelopeResults = self.read_json(response, MAX_ANSWER_BYTES).await?;
        if answer.results.len() != envelopes.len() {
            return Err(ClientError::Refused {
                partner: self.partner.clone(),
                status: 200,
                detail: format!("answered for {} of {} envelopes", answer.results.len(), envelopes.len()),
            });
        }
        Ok(answer.results)
    }

    /// Reads one page of the partner's catch-up feed: envelopes for this node after `after`.
    pub async fn feed(&self, after: i64, limit: u32) -> Result<FeedPage, ClientError> {
        let url = format!("{}/federation/v1/feed?after={after}&limit={limit}", self.base);
        let response = self.check(self.http.get(url).send().await.map_err(|e| self.unreachable(e))?).await?;
        let page: FeedPage = self.read_json(response, MAX_FEED_PAGE_BYTES).await?;
        if page.envelopes.len() > limit as usize {
            return Err(
                self.bad_answer(format!("a feed page of {} envelopes, {limit} were asked for", page.envelopes.len()))
            );
        }
        Ok(page)
    }

    /// Reads a JSON answer of at most `max` bytes: a partner cannot make this node hold more.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        mut response: reqwest::Response,
        max: usize,
    ) -> Result<T, ClientError> {
        let (body, whole) = self.read_capped(&mut response, max).await?;
        if !whole {
            return Err(self.bad_answer(format!("the answer is larger than {max} bytes")));
        }
        serde_json::from_slice(&body).map_err(|e| self.bad_answer(format!("the answer is not what was expected: {e}")))
    }

    /// Reads at most `max` bytes of the answer; also whether that was all of it. What lies past
    /// the cap is never read.
    async fn read_capped(&self, response: &mut reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), ClientError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(e))? {
            if body.len() + chunk.len() > max {
                body.extend_from_slice(&chunk[..max - body.len()]);
                return Ok((body, false));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, true))
    }

    fn bad_answer(&self, detail: String) -> ClientError {
        ClientError::Refused { partner: self.partner.clone(), status: 200, detail }
    }

    /// Posts a signed document to one of the partner's federation routes.
    pub async fn post(&self, path: &str, document: &Jws) -> Result<(), ClientError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(document);
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        self.check(response).await.map(|_| ())
    }

    fn unreachable(&self, error: reqwest::Error) -> ClientError {
        // The chain holds the TLS reason (an unknown pin, an expired certificate).
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        ClientError::Unreachable { partner: self.partner.clone(), reason }
    }

    async fn check(&self, mut response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let (body, _) = self.read_capped(&mut response, MAX_ERROR_BYTES).await.unwrap_or_default();
        let detail = String::from_utf8_lossy(&body).chars().take(500).collect();
        Err(ClientError::Refused { partner: self.partner.clone(), status, detail })
    }
}
