//! Signing as the Standard Webhooks specification says: HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! with the secret's bytes (the base64 after `whsec_`), sent as `v1,<base64>`, one per secret in
//! force (space-separated), so a receiver keeps verifying while a secret is rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The prefix of a secret, as the specification writes it.
const PREFIX: &str = "whsec_";
/// How long a replaced secret still signs, so receivers have time to change over.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// One signing secret and, once replaced, when it stops signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// A new secret: 24 random bytes.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 24];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// The secrets after a rotation at `now`: the new one, and the old ones still in force for a day.
pub fn rotated(secrets: &[Secret], new: String, now: DateTime<Utc>) -> Vec<Secret> {
    let overlap = now + Duration::hours(ROTATION_OVERLAP_HOURS);
    std::iter::once(Secret { secret: new, until: None })
        .chain(
            secrets
                .iter()
                .filter(|s| s.until.is_none_or(|u| u > now))
                .map(|s| Secret { secret: s.secret.clone(), until: Some(s.until.map_or(overlap, |u| u.min(overlap))) }),
        )
        .collect()
}

/// The `webhook-signature` header for a message, signed with every secret in force at `now`.
pub fn signature(secrets: &[Secret], id: &str, timestamp: i64, body: &str, now: DateTime<Utc>) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    secrets
        .iter()
        .filter(|s| s.until.is_none_or(|u| u > now))
        .filter_map(|s| STANDARD.decode(s.secret.strip_prefix(PREFIX).unwrap_or(&s.secret)).ok())
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), content.as_bytes());
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_it_says() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let secret = Secret { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), until: None };
        let body = r#"{"test": 2432232314}"#;
        let header = signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, DateTime::UNIX_EPOCH);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let old = vec![Secret { secret: new_secret().unwrap(), until: None }];
        let secrets = rotated(&old, new_secret().unwrap(), now);
        assert_eq!(signature(&secrets, "m", 1, "{}", now).split(' ').count(), 2);
        let later = now + Duration::hours(ROTATION_OVERLAP_HOURS);
        assert_eq!(signature(&secrets, "m", 1, "{}", later).split(' ').count(), 1);
    }
}
