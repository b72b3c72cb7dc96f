//! Serving certificates of the controllers' admission webhooks, made by Tenantry.
//!
//! The upstream Helm charts, when cert-manager is off, generate a CA and a serving certificate
//! at install time, keep them in a `kubernetes.io/tls` Secret the controller mounts, and put the
//! CA into the webhook configurations' `caBundle`; Tenantry does the same (with `rcgen`):
//!
//! - a self-signed CA (ECDSA P-256, 10 years, as the charts' `genCA 3650`), and a serving
//!   certificate it signs for `<service>.<namespace>.svc` and
//!   `<service>.<namespace>.svc.cluster.local` (server authentication, 10 years);
//! - the Secret holds `ca.crt`, `tls.crt` and `tls.key` (the keys the controllers read);
//! - idempotent: `ensure` reads the Secret first and keeps what it holds while
//!   [`WebhookTls::is_valid_for`] accepts it (the certificate chains to the Secret's CA, names
//!   both service names, its key is the certificate's, and it stays valid for
//!   [`RENEW_BEFORE_DAYS`] more days); only otherwise (missing, tampered, about to expire) is a new
//!   pair made, so a re-run never rotates it. `observe` only reads.
//!
//! The private key never appears in logs or drift reports: [`WebhookTls`]'s `Debug` omits it
//! and [`redact`] blanks the Secret's data wherever a manifest is reported.

use std::time::{Duration, SystemTime};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{json, Value};

use crate::error::{ErrorType, FunctionError};

/// A certificate is replaced when it expires within this many days.
pub const RENEW_BEFORE_DAYS: u64 = 30;
/// Lifetime of the CA and the serving certificate (the charts' 3650 days).
const VALIDITY_DAYS: i64 = 3650;
/// The Secret's keys.
pub const CA_KEY: &str = "ca.crt";
pub const CERT_KEY: &str = "tls.crt";
pub const PRIVATE_KEY: &str = "tls.key";
/// What [`redact`] puts in place of Secret data.
pub const REDACTED: &str = "(redacted)";

/// Where a webhook is served: the Service the webhook configurations name, and the Secret its
/// controller mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookService {
    pub namespace: &'static str,
    pub service: &'static str,
    pub secret: &'static str,
}

impl WebhookService {
    /// The names the serving certificate must carry.
    pub fn dns_names(&self) -> [String; 2] {
        let base = format!("{}.{}.svc", self.service, self.namespace);
        [base.clone(), format!("{base}.cluster.local")]
    }
}

/// A CA and the serving certificate it signed, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTls {
    pub ca_pem: String,
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for WebhookTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTls")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &REDACTED)
            .finish()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(ErrorType::Terminal, format!("{what}: {e}"))
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

impl WebhookTls {
    /// A fresh CA and serving certificate for `service`.
    pub fn generate(service: &WebhookService) -> Result<WebhookTls, FunctionError> {
        let today = chrono::Utc::now().date_naive();
        let day = |d: chrono::NaiveDate| {
            use chrono::Datelike;
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };
        // A day back, so a node whose clock lags a little still accepts it.
        let not_before = day(today - chrono::Days::new(1));
        let not_after = day(today + chrono::Days::new(VALIDITY_DAYS as u64));

        let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(
            DnType::CommonName,
            format!(
                "tenantry webhook CA {}.{}",
                service.service, service.namespace
            ),
        );
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_cert = ca
            .self_signed(&ca_key)
            .map_err(|e| tls_error("CA certificate", e))?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().map_err(|e| tls_error("serving key", e))?;
        let mut params = CertificateParams::new(service.dns_names().to_vec())
            .map_err(|e| tls_error("serving certificate names", e))?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, service.dns_names()[0].clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| tls_error("serving certificate", e))?;
        Ok(WebhookTls {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// What a `kubernetes.io/tls` Secret (as read from the API) holds, if it has all three keys.
    pub fn from_secret(secret: &Value) -> Option<WebhookTls> {
        let field = |k: &str| -> Option<String> {
            let text = secret["data"][k].as_str()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?;
            String::from_utf8(bytes).ok()
        };
        Some(WebhookTls {
            ca_pem: field(CA_KEY)?,
            cert_pem: field(CERT_KEY)?,
            key_pem: field(PRIVATE_KEY)?,
        })
    }

    /// Placeholder values, for rendering what only needs names (plan, delete).
    pub fn placeholder() -> WebhookTls {
        WebhookTls {
            ca_pem: "(the webhook CA, generated by Tenantry)".to_owned(),
            cert_pem: "(the serving certificate, generated by Tenantry)".to_owned(),
            key_pem: "(its private key)".to_owned(),
        }
    }

    /// The webhook configurations' `caBundle`: the CA certificate, PEM, base64.
    pub fn ca_bundle(&self) -> String {
        b64(&self.ca_pem)
    }

    /// Whether the serving certificate chains to the CA, names both of `service`'s names, is
    /// valid at `at` and still [`RENEW_BEFORE_DAYS`] later, and `tls.key` is its key.
    pub fn is_valid_for(&self, service: &WebhookService, at: SystemTime) -> bool {
        self.check(service, at).is_ok()
    }

    fn check(&self, service: &WebhookService, at: SystemTime) -> Result<(), String> {
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|e| format!("ca.crt: {e}"))?;
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| format!("tls.crt: {e}"))?;
        let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(|e| format!("{e}"))?;
        let end_entity = webpki::EndEntityCert::try_from(&cert).map_err(|e| format!("{e}"))?;
        for when in [at, at + Duration::from_secs(RENEW_BEFORE_DAYS * 86_400)] {
            let since = when
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|e| e.to_string())?;
            end_entity
                .verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    std::slice::from_ref(&anchor),
                    &[],
                    UnixTime::since_unix_epoch(since),
                    webpki::KeyUsage::server_auth(),
                    None,
                    None,
                )
                .map_err(|e| format!("chain: {e}"))?;
        }
        for name in service.dns_names() {
            let name = ServerName::try_from(name).map_err(|e| e.to_string())?;
            end_entity
                .verify_is_valid_for_subject_name(&name)
                .map_err(|e| format!("name: {e}"))?;
        }
        let key = KeyPair::from_pem(&self.key_pem).map_err(|e| format!("tls.key: {e}"))?;
        if end_entity.subject_public_key_info().as_ref() != key.subject_public_key_info() {
            return Err("tls.key is not the certificate's key".to_owned());
        }
        Ok(())
    }

    /// The `kubernetes.io/tls` Secret of `service` (its data base64, as the API stores it).
    pub fn secret_manifest(&self, service: &WebhookService, labels: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": service.secret, "namespace": service.namespace,
                          "labels": labels },
            "type": "kubernetes.io/tls",
            "data": {
                CA_KEY: b64(&self.ca_pem),
                CERT_KEY: b64(&self.cert_pem),
                PRIVATE_KEY: b64(&self.key_pem),
            },
        })
    }
}

/// `object` with a Secret's `data` and `stringData` values replaced by [`REDACTED`] (for drift
/// reports and anything else that is stored or printed); other objects are returned unchanged.
pub fn redact(object: &Value) -> Value {
    let mut out = object.clone();
    if out["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(data) = out.get_mut(field).and_then(Value::as_object_mut) {
                for v in data.values_mut() {
                    *v = json!(REDACTED);
                }
            }
        }
    }
    out
}

/// The pair of `service` to use: the one its live Secret (`live`, as read) holds while it is
/// valid, else a new one. Returns the pair and whether it is new.
pub fn reuse_or_generate(
    service: &WebhookService,
    live: Option<&Value>,
    now: SystemTime,
) -> Result<(WebhookTls, bool), FunctionError> {
    if let Some(tls) = live.and_then(WebhookTls::from_secret) {
        if tls.is_valid_for(service, now) {
            return Ok((tls, false));
        }
        tracing::info!(
            secret = %format!("{}/{}", service.namespace, service.secret),
            "webhook certificate invalid or about to expire: issuing a new one"
        );
    }
    Ok((WebhookTls::generate(service)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: WebhookService = WebhookService {
        namespace: "kube-system",
        service: "aws-load-balancer-webhook-service",
        secret: "aws-load-balancer-tls",
    };

    #[test]
    fn a_fresh_pair_verifies_for_both_names_and_round_trips_through_its_secret() {
        let tls = WebhookTls::generate(&SVC).expect("generate");
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            tls.is_valid_for(&SVC, SystemTime::now()),
            "{:?}",
            tls.check(&SVC, SystemTime::now())
        );
        assert_eq!(
            SVC.dns_names(),
            [
                "aws-load-balancer-webhook-service.kube-system.svc".to_owned(),
                "aws-load-balancer-webhook-service.kube-system.svc.cluster.local".to_owned()
            ]
        );
        let secret = tls.secret_manifest(&SVC, json!({}));
        assert_eq!(secret["type"], "kubernetes.io/tls");
        assert_eq!(WebhookTls::from_secret(&secret), Some(tls.clone()));
        let (again, fresh) = reuse_or_generate(&SVC, Some(&secret), SystemTime::now()).unwrap();
        assert!(!fresh);
        assert_eq!(again, tls);
    }

    #[test]
    fn a_pair_for_another_service_or_near_expiry_or_with_a_foreign_key_is_replaced() {
        let tls = WebhookTls::generate(&SVC).expect("generate");
        let other = WebhookService {
            service: "other",
            ..SVC
        };
        assert!(!tls.is_valid_for(&other, SystemTime::now()));
        let late = SystemTime::now() + Duration::from_secs((VALIDITY_DAYS as u64 - 10) * 86_400);
        assert!(!tls.is_valid_for(&SVC, late));
        let stranger = WebhookTls::generate(&SVC).expect("generate");
        let mixed = WebhookTls {
            key_pem: stranger.key_pem.clone(),
            ..tls.clone()
        };
        assert!(!mixed.is_valid_for(&SVC, SystemTime::now()));
        let foreign_ca = WebhookTls {
            ca_pem: stranger.ca_pem.clone(),
            ..tls.clone()
        };
        assert!(!foreign_ca.is_valid_for(&SVC, SystemTime::now()));
        let (new, fresh) = reuse_or_generate(
            &SVC,
            Some(&mixed.secret_manifest(&SVC, json!({}))),
            SystemTime::now(),
        )
        .unwrap();
        assert!(fresh);
        assert_ne!(new.ca_pem, tls.ca_pem);
        assert!(reuse_or_generate(&SVC, None, SystemTime::now()).unwrap().1);
    }

    #[test]
    fn key_material_is_never_printed() {
        let tls = WebhookTls::generate(&SVC).expect("generate");
        let debug = format!("{tls:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let secret = tls.secret_manifest(&SVC, json!({}));
        let shown = redact(&secret).to_string();
        assert!(!shown.contains(&b64(&tls.key_pem)));
        assert_eq!(redact(&secret)["data"][PRIVATE_KEY], REDACTED);
        let cm = json!({"kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(redact(&cm), cm);
    }
}
