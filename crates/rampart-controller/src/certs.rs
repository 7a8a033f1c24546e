//! The webhook's certificates: a self-signed CA and a serving certificate
//! for the webhook Service, kept in one Secret (`ca.crt`, `ca.key`,
//! `tls.crt`, `tls.key`) that the webhook pods mount (`rampart serve`
//! reloads the files when they change).
//!
//! The CA lives ten years; the serving certificate one year and is re-issued
//! by the same CA when less than [`RENEW_BEFORE`] of it is left, so the CA
//! bundle in the webhook configurations does not change. When the CA itself
//! is that close to expiry both are replaced and the controller rewrites the
//! bundle. Expiry times are kept in the Secret's annotations (RFC 3339), so
//! nothing parses X.509 here.
//!
//! With cert-manager, annotate the Secret `rampart.dev/cert-manager: "true"`
//! (or run the controller with `--cert-manager`): the controller then leaves
//! the Secret alone and reads `ca.crt` from it for the bundle (cert-manager's
//! `Certificate` writes `ca.crt`, `tls.crt`, `tls.key`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
pub const CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Re-issue when less than this is left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

pub const ANNOTATION_CA_NOT_AFTER: &str = "rampart.dev/ca-not-after";
pub const ANNOTATION_CERT_NOT_AFTER: &str = "rampart.dev/cert-not-after";
pub const ANNOTATION_CERT_MANAGER: &str = "rampart.dev/cert-manager";
const CA_NAME: &str = "rampart webhook CA";

/// PEM material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    pub ca_not_after: jiff::Timestamp,
    pub cert_not_after: jiff::Timestamp,
}

fn ca_params(not_before: jiff::Timestamp, not_after: jiff::Timestamp) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, not_before, not_after);
    Ok(params)
}

/// Validity by whole days (UTC): from the day before `from` to the day of `to`.
fn set_validity(params: &mut CertificateParams, from: jiff::Timestamp, to: jiff::Timestamp) {
    let ymd = |t: jiff::Timestamp| {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8)
    };
    params.not_before = ymd(from - jiff::SignedDuration::from_hours(24));
    params.not_after = ymd(to);
}

fn add(t: jiff::Timestamp, d: Duration) -> Result<jiff::Timestamp> {
    Ok(t.checked_add(jiff::SignedDuration::try_from(d)?)?)
}

/// DNS names of a Service: `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn generate(names: &[String], now: jiff::Timestamp) -> Result<Bundle> {
    let ca_key = KeyPair::generate()?;
    let ca_not_after = add(now, CA_LIFETIME)?;
    let params = ca_params(now, ca_not_after)?;
    let ca_cert = params.self_signed(&ca_key)?.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(params, ca_key);
    let (cert, key, cert_not_after) = issue(&issuer, names, now)?;
    Ok(Bundle {
        ca_cert,
        ca_key: ca_key_pem,
        cert,
        key,
        ca_not_after,
        cert_not_after,
    })
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    names: &[String],
    now: jiff::Timestamp,
) -> Result<(String, String, jiff::Timestamp)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("rampart"),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let not_after = add(now, CERT_LIFETIME)?;
    set_validity(&mut params, now, not_after);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// A new serving certificate from the bundle's CA (same key and name, so
/// the CA certificate in the webhook configurations still verifies it).
pub fn reissue(bundle: &Bundle, names: &[String], now: jiff::Timestamp) -> Result<Bundle> {
    let ca_key = KeyPair::from_pem(&bundle.ca_key).context("parsing the CA key")?;
    let params = ca_params(now, bundle.ca_not_after)?;
    let issuer = Issuer::new(params, ca_key);
    let (cert, key, cert_not_after) = issue(&issuer, names, now)?;
    Ok(Bundle {
        cert,
        key,
        cert_not_after,
        ..bundle.clone()
    })
}

/// What to do with a bundle at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    ReissueCert,
    NewCa,
}

pub fn renewal(bundle: &Bundle, now: jiff::Timestamp) -> Result<Renewal> {
    let renew_at = |t: jiff::Timestamp| -> Result<jiff::Timestamp> {
        Ok(t.checked_sub(jiff::SignedDuration::try_from(RENEW_BEFORE)?)?)
    };
    Ok(if now >= renew_at(bundle.ca_not_after)? {
        Renewal::NewCa
    } else if now >= renew_at(bundle.cert_not_after)? {
        Renewal::ReissueCert
    } else {
        Renewal::Keep
    })
}

fn to_secret(bundle: &Bundle, namespace: &str, name: &str) -> Secret {
    let data = [
        ("ca.crt", &bundle.ca_cert),
        ("ca.key", &bundle.ca_key),
        ("tls.crt", &bundle.cert),
        ("tls.key", &bundle.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "rampart".to_owned(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    ANNOTATION_CA_NOT_AFTER.to_owned(),
                    bundle.ca_not_after.to_string(),
                ),
                (
                    ANNOTATION_CERT_NOT_AFTER.to_owned(),
                    bundle.cert_not_after.to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

fn from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let annotations = secret.metadata.annotations.as_ref()?;
    let time = |k: &str| annotations.get(k).and_then(|t| t.parse().ok());
    Some(Bundle {
        ca_cert: text("ca.crt")?,
        ca_key: text("ca.key")?,
        cert: text("tls.crt")?,
        key: text("tls.key")?,
        ca_not_after: time(ANNOTATION_CA_NOT_AFTER)?,
        cert_not_after: time(ANNOTATION_CERT_NOT_AFTER)?,
    })
}

/// Makes sure the Secret holds a valid bundle for `names`, creating or
/// renewing it; returns the CA certificate (PEM) for `caBundle`.
pub async fn ensure_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    names: &[String],
    cert_manager: bool,
) -> Result<String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let now = jiff::Timestamp::now();
    let existing = api.get_opt(name).await?;
    let external = cert_manager
        || existing.as_ref().is_some_and(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_CERT_MANAGER))
                .is_some_and(|v| v == "true")
        });
    if external {
        let Some(secret) = existing else {
            bail!("Secret {namespace}/{name} (managed by cert-manager) does not exist yet");
        };
        let ca = secret
            .data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        return ca.with_context(|| format!("Secret {namespace}/{name} has no ca.crt"));
    }
    match existing {
        None => {
            let bundle = generate(names, now)?;
            api.create(&PostParams::default(), &to_secret(&bundle, namespace, name))
                .await
                .context("creating the webhook certificate Secret")?;
            tracing::info!(
                secret = name,
                "created the webhook CA and serving certificate"
            );
            Ok(bundle.ca_cert)
        }
        Some(secret) => {
            let next = match from_secret(&secret) {
                None => Some(generate(names, now)?),
                Some(bundle) => match renewal(&bundle, now)? {
                    Renewal::Keep => return Ok(bundle.ca_cert),
                    Renewal::ReissueCert => Some(reissue(&bundle, names, now)?),
                    Renewal::NewCa => Some(generate(names, now)?),
                },
            };
            let bundle = next.expect("a new bundle");
            let mut new = to_secret(&bundle, namespace, name);
            // Optimistic concurrency: a replica that lost the race gets 409.
            new.metadata.resource_version = secret.metadata.resource_version.clone();
            api.replace(name, &PostParams::default(), &new)
                .await
                .context("renewing the webhook certificate Secret")?;
            tracing::info!(secret = name, "renewed the webhook serving certificate");
            Ok(bundle.ca_cert)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_schedule() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let names = service_dns_names("rampart", "rampart-system");
        let b = generate(&names, now).unwrap();
        assert!(b.ca_cert.contains("BEGIN CERTIFICATE"));
        assert_eq!(renewal(&b, now).unwrap(), Renewal::Keep);
        let late = add(now, CERT_LIFETIME - Duration::from_secs(24 * 3600)).unwrap();
        assert_eq!(renewal(&b, late).unwrap(), Renewal::ReissueCert);
        let r = reissue(&b, &names, late).unwrap();
        assert_eq!(r.ca_cert, b.ca_cert);
        assert_ne!(r.cert, b.cert);
        assert_eq!(renewal(&r, late).unwrap(), Renewal::Keep);
        let very_late = add(now, CA_LIFETIME).unwrap();
        assert_eq!(renewal(&r, very_late).unwrap(), Renewal::NewCa);
        let secret = to_secret(&r, "ns", "s");
        assert_eq!(from_secret(&secret).unwrap(), r);
    }
}
