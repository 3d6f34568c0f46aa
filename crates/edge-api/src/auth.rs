//! Authentication as RMS does it: `POST /auth/token` exchanges `{subscriptionId, apiKey}` for a
//! signed JWT (plain text), and every API call carries `Authorization: Bearer <jwt>`. For curl,
//! the raw API key is accepted as the bearer token (or in `x-api-key`) too.
//!
//! Keys look like `rmse_<16 hex id>_<64 hex secret>`. The id is public (it is how `keys list`
//! and `keys revoke` name a key); only SHA-256 of the secret is stored. The secret is 256 random
//! bits, so a fast hash is enough, and looking the key up by id lets the secret be compared in
//! constant time.

use std::sync::Arc;

use edge_db::{ApiKeyRow, Db};
use edge_model::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

const KEY_PREFIX: &str = "rmse_";
/// Key id used in tokens issued for the key from the configuration file.
pub const CONFIG_KEY_ID: &str = "config";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The key id the token was issued for.
    sub: String,
    iss: String,
    /// The subscription id (audience).
    aud: String,
    iat: u64,
    exp: u64,
}

/// A freshly created key: the full secret exists only here and is shown once.
pub struct NewKey {
    pub row: ApiKeyRow,
    pub secret: String,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

pub fn new_key(name: &str) -> NewKey {
    let id = random_hex(8);
    let secret = random_hex(32);
    NewKey {
        row: ApiKeyRow {
            id: id.clone(),
            name: name.to_owned(),
            secret_sha256: sha256(&secret),
            created: Timestamp::now(),
            revoked: None,
        },
        secret: format!("{KEY_PREFIX}{id}_{secret}"),
    }
}

fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && secret.len() == 64).then_some((id, secret))
}

pub struct Auth {
    db: Arc<Db>,
    subscription_id: String,
    config_key_sha256: Option<[u8; 32]>,
    enc: EncodingKey,
    dec: DecodingKey,
    lifetime_secs: u64,
}

impl Auth {
    /// Loads (or creates) the JWT signing secret from the database.
    pub fn new(
        db: Arc<Db>,
        subscription_id: &str,
        config_key: &str,
        lifetime_secs: u64,
    ) -> Result<Auth, edge_db::DbError> {
        let secret = db.meta_get_or_insert("jwt-secret", || random_hex(32))?;
        Ok(Auth {
            db,
            subscription_id: subscription_id.to_owned(),
            config_key_sha256: (!config_key.is_empty()).then(|| sha256(config_key)),
            enc: EncodingKey::from_secret(secret.as_bytes()),
            dec: DecodingKey::from_secret(secret.as_bytes()),
            lifetime_secs,
        })
    }

    /// Checks an API key; returns the id of the key it is.
    pub fn verify_key(&self, presented: &str) -> Result<String, ApiError> {
        let bad = || {
            ApiError::unauthorized("AuthenticationFailed", "The API key is not valid (unknown, revoked or mistyped).")
        };
        if let Some(h) = &self.config_key_sha256
            && bool::from(sha256(presented).ct_eq(h))
        {
            return Ok(CONFIG_KEY_ID.to_owned());
        }
        let (id, secret) = split_key(presented).ok_or_else(bad)?;
        let row = self.db.key_get(id).map_err(ApiError::from)?.ok_or_else(bad)?;
        if row.revoked.is_some() || !bool::from(sha256(secret).ct_eq(&row.secret_sha256)) {
            return Err(bad());
        }
        Ok(row.id)
    }

    /// Whether `config.toml` sets an API key (which always lets clients in).
    pub fn has_config_key(&self) -> bool {
        self.config_key_sha256.is_some()
    }

    fn key_still_valid(&self, id: &str) -> Result<bool, ApiError> {
        if id == CONFIG_KEY_ID {
            return Ok(self.config_key_sha256.is_some());
        }
        Ok(self.db.key_get(id)?.is_some_and(|k| k.revoked.is_none()))
    }

    /// `POST /auth/token`.
    pub fn issue(&self, subscription_id: &str, api_key: &str) -> Result<String, ApiError> {
        if !subscription_id.eq_ignore_ascii_case(&self.subscription_id) {
            return Err(ApiError::unauthorized(
                "AuthenticationFailed",
                format!(
                    "Unknown subscriptionId '{subscription_id}'; this appliance's subscriptionId is shown at start-up and in `rms-edge keys list`."
                ),
            ));
        }
        let kid = self.verify_key(api_key)?;
        let now = unix_now();
        let claims = Claims {
            sub: kid,
            iss: "rms-edge".into(),
            aud: self.subscription_id.clone(),
            iat: now,
            exp: now + self.lifetime_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|e| ApiError::internal("jwt encode", e))
    }

    /// Checks a bearer credential: a JWT issued here, or a raw API key.
    pub fn verify_bearer(&self, token: &str) -> Result<String, ApiError> {
        if token.matches('.').count() == 2 {
            let mut v = Validation::new(Algorithm::HS256);
            v.set_audience(&[&self.subscription_id]);
            v.set_issuer(&["rms-edge"]);
            v.leeway = 30;
            let data = jsonwebtoken::decode::<Claims>(token, &self.dec, &v).map_err(|e| {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "The token has expired; get a new one from POST /auth/token."
                    }
                    _ => "The token is not valid for this appliance; get one from POST /auth/token.",
                };
                ApiError::unauthorized("InvalidAuthenticationToken", why)
            })?;
            if !self.key_still_valid(&data.claims.sub)? {
                return Err(ApiError::unauthorized(
                    "InvalidAuthenticationToken",
                    "The API key this token was issued for has been revoked.",
                ));
            }
            return Ok(data.claims.sub);
        }
        self.verify_key(token)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(config_key: &str) -> (Auth, Arc<Db>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("edge-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Arc::new(Db::open(&dir.join("db"), "t").unwrap());
        (Auth::new(db.clone(), "sub-1", config_key, 3600).unwrap(), db, dir)
    }

    #[test]
    fn key_lifecycle() {
        let (a, db, dir) = auth("");
        let k = new_key("ops");
        db.key_insert(&k.row).unwrap();
        assert_eq!(a.verify_key(&k.secret).unwrap(), k.row.id);
        let mut wrong = k.secret.clone();
        wrong.pop();
        wrong.push('x');
        assert!(a.verify_key(&wrong).is_err());
        assert!(a.verify_key("nonsense").is_err());
        let jwt = a.issue("SUB-1", &k.secret).unwrap();
        assert_eq!(a.verify_bearer(&jwt).unwrap(), k.row.id);
        assert!(a.issue("sub-2", &k.secret).is_err());
        db.key_revoke(&k.row.id).unwrap();
        assert!(a.verify_key(&k.secret).is_err());
        assert!(a.verify_bearer(&jwt).is_err(), "a revoked key's tokens stop working");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let (a, _db, dir) = auth("plain-config-key");
        let jwt = a.issue("sub-1", "plain-config-key").unwrap();
        assert_eq!(a.verify_bearer(&jwt).unwrap(), CONFIG_KEY_ID);
        assert_eq!(a.verify_bearer("plain-config-key").unwrap(), CONFIG_KEY_ID);
        let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
        parts[1].insert(3, 'A');
        assert!(a.verify_bearer(&parts.join(".")).is_err());
        let foreign = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims { sub: "config".into(), iss: "rms-edge".into(), aud: "sub-1".into(), iat: 0, exp: unix_now() + 60 },
            &EncodingKey::from_secret(b"another appliance"),
        )
        .unwrap();
        assert!(a.verify_bearer(&foreign).is_err());
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims { sub: "config".into(), iss: "rms-edge".into(), aud: "sub-1".into(), iat: 0, exp: 1000 },
            &a.enc,
        )
        .unwrap();
        let e = a.verify_bearer(&expired).unwrap_err();
        assert!(e.message.contains("expired"), "{}", e.message);
        std::fs::remove_dir_all(dir).ok();
    }
}
