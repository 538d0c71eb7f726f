//! JOSE through well-kept crates, never by hand: RSA key generation with `rsa`, signing and
//! verification with `jsonwebtoken` (its RustCrypto backend), JWKs with `jsonwebtoken::jwk`.
//! Only RS256 is produced or accepted: a token with `alg=none` or an HMAC algorithm is refused
//! by [`verify`] before any key is looked at.

use crate::ports::SecretGenerator;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::rand_core::{CryptoRng, RngCore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// A JOSE operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Key generation or encoding failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// A stored key could not be used.
    #[error("stored key unusable")]
    BadKey,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The token is not a valid RS256 JWT signed by one of the keys (or its claims are wrong).
    #[error("token refused")]
    Refused,
}

/// The port's randomness as the `rand_core` the `rsa` crate wants.
struct PortRng<'a>(&'a dyn SecretGenerator);

impl RngCore for PortRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for PortRng<'_> {}

/// A freshly generated RSA 2048 key: the private key as PKCS#1 DER (to be sealed) and the
/// public JWK with `kid`, `use=sig`, `alg=RS256`.
pub struct GeneratedKey {
    /// PKCS#1 DER of the private key.
    pub private_der: Zeroizing<Vec<u8>>,
    /// The public JWK as JSON.
    pub public_jwk: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA 2048 signing key with the port's randomness.
///
/// # Errors
/// [`JoseError::KeyGeneration`].
pub fn generate_key(random: &dyn SecretGenerator, kid: &str) -> Result<GeneratedKey, JoseError> {
    let key = rsa::RsaPrivateKey::new(&mut PortRng(random), 2048)
        .map_err(|_| JoseError::KeyGeneration)?;
    let der = key.to_pkcs1_der().map_err(|_| JoseError::KeyGeneration)?;
    let private_der = Zeroizing::new(der.as_bytes().to_vec());
    let enc = EncodingKey::from_rsa_der(&private_der);
    let mut jwk =
        Jwk::from_encoding_key(&enc, Algorithm::RS256).map_err(|_| JoseError::KeyGeneration)?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public_jwk = serde_json::to_string(&jwk).map_err(|_| JoseError::KeyGeneration)?;
    Ok(GeneratedKey {
        private_der,
        public_jwk,
    })
}

/// Signs `claims` with RS256 under `kid`, with `typ` in the header (`JWT`, `at+jwt`,
/// `logout+jwt`).
///
/// # Errors
/// [`JoseError::Signing`].
pub fn sign<T: Serialize>(
    claims: &T,
    kid: &str,
    typ: &str,
    private_der: &[u8],
) -> Result<String, JoseError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(private_der))
        .map_err(|_| JoseError::Signing)
}

/// A JWKS of the given public JWKs (JSON each).
///
/// # Errors
/// [`JoseError::BadKey`] if a stored JWK does not parse.
pub fn jwks<'a>(public_jwks: impl IntoIterator<Item = &'a str>) -> Result<JwkSet, JoseError> {
    let keys = public_jwks
        .into_iter()
        .map(|j| serde_json::from_str::<Jwk>(j).map_err(|_| JoseError::BadKey))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JwkSet { keys })
}

/// Verifies an RS256 JWT against `keys` (by its `kid`) and reads its claims. `alg=none`, HMAC
/// and every algorithm but RS256 are refused. The issuer is always checked; the expiry only
/// when `now` (Unix seconds, the core's clock) is given: `exp` must then be present and after it.
///
/// # Errors
/// [`JoseError::Refused`].
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    now: Option<i64>,
) -> Result<T, JoseError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JoseError::Refused)?;
    if header.alg != Algorithm::RS256 {
        return Err(JoseError::Refused);
    }
    let kid = header.kid.ok_or(JoseError::Refused)?;
    let jwk = keys.find(&kid).ok_or(JoseError::Refused)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JoseError::Refused)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.validate_aud = false;
    // Expiry against the core's clock below, not the system's.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|_| JoseError::Refused)?
        .claims;
    if let Some(now) = now {
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(JoseError::Refused)?;
        if exp <= now {
            return Err(JoseError::Refused);
        }
    }
    serde_json::from_value(claims).map_err(|_| JoseError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    struct Os;
    impl SecretGenerator for Os {
        fn fill(&self, buf: &mut [u8]) {
            crate::defaults::OsSecretGenerator.fill(buf);
        }
    }

    #[test]
    fn signs_and_verifies_rs256_and_refuses_none_and_hmac() {
        let key = generate_key(&Os, "k1").unwrap();
        let set = jwks([key.public_jwk.as_str()]).unwrap();
        let claims =
            serde_json::json!({"iss": "https://p.example", "sub": "u", "exp": 4_102_444_800_u64});
        let jwt = sign(&claims, "k1", "JWT", &key.private_der).unwrap();
        let back: serde_json::Value = verify(&jwt, &set, "https://p.example", Some(0)).unwrap();
        // Expired by the given clock.
        assert!(
            verify::<serde_json::Value>(&jwt, &set, "https://p.example", Some(4_102_444_800))
                .is_err()
        );
        assert_eq!(back["sub"], "u");
        // A wrong issuer is refused.
        assert!(verify::<serde_json::Value>(&jwt, &set, "https://other", Some(0)).is_err());
        // alg=none with the same claims.
        let body = jwt.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1","typ":"JWT"}"#);
        let none = format!("{none_header}.{body}.");
        assert_eq!(
            verify::<serde_json::Value>(&none, &set, "https://p.example", Some(0)),
            Err(JoseError::Refused)
        );
        // HS256 keyed with the public key's modulus (the classic confusion attack).
        let n = serde_json::from_str::<serde_json::Value>(&key.public_jwk).unwrap()["n"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let hs =
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();
        assert_eq!(
            verify::<serde_json::Value>(&hs, &set, "https://p.example", Some(0)),
            Err(JoseError::Refused)
        );
        // A tampered signature.
        let mut bad = jwt.clone();
        bad.push('A');
        assert!(verify::<serde_json::Value>(&bad, &set, "https://p.example", Some(0)).is_err());
    }
}
