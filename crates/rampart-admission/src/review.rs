//! `AdmissionReview` (`admission.k8s.io/v1`) in and out.
//!
//! The request envelope is deserialised once into borrowed fields; `object`,
//! `oldObject` and `options` stay raw JSON ([`RawValue`]) so that a request no
//! policy matches (a ConfigMap UPDATE, a Secret) is answered without building
//! a tree of its object, and Secret data is never materialised. The object is
//! parsed into a [`Value`] only when a rule needs it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The only `AdmissionReview` version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an `AdmissionReview` the server can answer: every case is
/// a 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReview(pub String);

impl fmt::Display for BadReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadReview {}

fn bad(msg: impl Into<String>) -> BadReview {
    BadReview(msg.into())
}

pub use rampart_core::request::{GroupVersionKind, GroupVersionResource, Operation, UserInfo};

/// `request` of an `AdmissionReview`, borrowing from the body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow)]
    pub resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    pub operation: Operation,
    /// Owned: `extra` is small and a policy may read it.
    #[serde(default)]
    pub user_info: UserInfo<'a>,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// `CreateOptions`, `UpdateOptions`, `DeleteOptions` or a CONNECT's options.
    #[serde(borrow, default)]
    pub options: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<AdmissionRequest<'a>>,
}

fn unsupported(version: &str) -> BadReview {
    bad(format!(
        "unsupported AdmissionReview apiVersion {version:?}: only {API_VERSION} is served \
         (set admissionReviewVersions: [v1] in the webhook configuration)"
    ))
}

/// Parses a body into its request. Everything wrong is a [`BadReview`]:
/// invalid UTF-8 or JSON, another `apiVersion` (v1beta1), a missing `request`,
/// `uid` or `object`.
pub fn parse_request(body: &[u8]) -> Result<AdmissionRequest<'_>, BadReview> {
    let text = std::str::from_utf8(body).map_err(|e| {
        bad(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let envelope: Envelope<'_> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) if e.is_data() => {
            // A request of another shape may be another version's: say so.
            #[derive(Deserialize)]
            struct VersionOnly {
                #[serde(rename = "apiVersion")]
                api_version: Option<String>,
            }
            if let Ok(VersionOnly {
                api_version: Some(v),
            }) = serde_json::from_str(text)
                && v != API_VERSION
            {
                return Err(unsupported(&v));
            }
            return Err(bad(format!("invalid AdmissionReview: {e}")));
        }
        Err(e) => {
            return Err(bad(format!(
                "request body is not a JSON AdmissionReview: {e}"
            )));
        }
    };
    match envelope.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => return Err(unsupported(other)),
        None => {
            return Err(bad(format!(
                "not an AdmissionReview: apiVersion is missing (expected {API_VERSION})"
            )));
        }
    }
    if envelope.kind.as_deref() != Some("AdmissionReview") {
        return Err(bad(format!(
            "not an AdmissionReview: kind is {:?}",
            envelope.kind.as_deref().unwrap_or("")
        )));
    }
    let request = envelope
        .request
        .ok_or_else(|| bad("AdmissionReview has no request"))?;
    if request.uid.is_empty() {
        return Err(bad("AdmissionReview request has an empty uid"));
    }
    if request.kind.kind.is_empty() {
        return Err(bad("AdmissionReview request has no kind"));
    }
    let needs_object = matches!(request.operation, Operation::Create | Operation::Update);
    if needs_object && request.object.is_none() {
        return Err(bad(format!(
            "AdmissionReview request for {} has no object",
            request.operation
        )));
    }
    Ok(request)
}

/// Parses a raw object into a tree. Fails on nesting deeper than serde_json's
/// recursion limit (128), which the envelope parse does not check.
pub fn parse_object(raw: &RawValue) -> Result<Value, BadReview> {
    serde_json::from_str(raw.get()).map_err(|e| {
        let what = if e.to_string().contains("recursion limit") {
            "object is nested too deeply"
        } else {
            "object is not valid JSON"
        };
        bad(format!("{what}: {e}"))
    })
}

/// `status` of a denied response (a `metav1.Status`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub code: u16,
    pub message: String,
    pub reason: &'static str,
    pub status: &'static str,
}

/// `response` of an `AdmissionReview`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSON Patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub warnings: &'a [String],
    #[serde(skip_serializing_if = "<[(String, String)]>::is_empty")]
    #[serde(serialize_with = "ser_pairs")]
    pub audit_annotations: &'a [(String, String)],
}

fn ser_pairs<S: serde::Serializer>(pairs: &&[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a AdmissionResponse<'a>,
}

/// The JSON body answering a review.
pub fn render_response(response: &AdmissionResponse<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Serialising plain strings and integers into a Vec cannot fail.
    serde_json::to_writer(
        &mut out,
        &ReviewOut {
            api_version: API_VERSION,
            kind: "AdmissionReview",
            response,
        },
    )
    .expect("serialising an AdmissionReview response");
    out
}

/// The API server's `?timeout=` query value (Go duration such as `10s`).
pub fn timeout_from_query(query: Option<&str>) -> Option<std::time::Duration> {
    let query = query?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "timeout")
        .and_then(|(_, v)| crate::duration::parse(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn review(request: Value) -> Vec<u8> {
        body(json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": request}))
    }

    #[test]
    fn parses_a_pod_create() {
        let b = review(json!({
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p", "namespace": "ns", "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"], "extra": {"x": ["y"]}},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
            "oldObject": null, "dryRun": false
        }));
        let r = parse_request(&b).unwrap();
        assert_eq!(r.uid, "u1");
        assert_eq!(r.kind.kind, "Pod");
        assert_eq!(r.operation, Operation::Create);
        assert_eq!(r.user_info.groups.len(), 2);
        assert!(r.old_object.is_none());
        let obj = parse_object(r.object.unwrap()).unwrap();
        assert_eq!(obj["metadata"]["name"], "p");
    }

    #[test]
    fn rejects_what_the_api_server_never_sends() {
        let v1beta1 = body(
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}),
        );
        assert!(parse_request(&v1beta1).unwrap_err().0.contains("v1beta1"));
        assert!(
            parse_request(b"garbage")
                .unwrap_err()
                .0
                .contains("not a JSON")
        );
        assert!(
            parse_request(&[0xff, 0xfe])
                .unwrap_err()
                .0
                .contains("UTF-8")
        );
        let no_request = body(json!({"apiVersion": API_VERSION, "kind": "AdmissionReview"}));
        assert!(
            parse_request(&no_request)
                .unwrap_err()
                .0
                .contains("no request")
        );
        let no_object = review(
            json!({"uid": "u", "kind": {"kind": "Pod"}, "resource": {}, "operation": "CREATE"}),
        );
        assert!(
            parse_request(&no_object)
                .unwrap_err()
                .0
                .contains("no object")
        );
        let bad_op = review(
            json!({"uid": "u", "kind": {"kind": "Pod"}, "resource": {}, "operation": "PATCH"}),
        );
        assert!(
            parse_request(&bad_op)
                .unwrap_err()
                .0
                .contains("unknown operation")
        );
    }

    #[test]
    fn deep_objects_fail_when_parsed() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"kind":"Pod"}},"resource":{{}},"operation":"CREATE","object":{deep}}}}}"#
        );
        let r = parse_request(text.as_bytes()).unwrap();
        assert!(
            parse_object(r.object.unwrap())
                .unwrap_err()
                .0
                .contains("too deeply")
        );
    }

    #[test]
    fn reads_the_timeout_query() {
        assert_eq!(
            timeout_from_query(Some("timeout=10s")),
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            timeout_from_query(Some("a=b&timeout=500ms")),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(timeout_from_query(Some("timeout=banana")), None);
        assert_eq!(timeout_from_query(None), None);
    }

    #[test]
    fn renders_responses() {
        let warnings = vec!["w".to_owned()];
        let audit = vec![("k".to_owned(), "v".to_owned())];
        let r = AdmissionResponse {
            uid: "u",
            allowed: false,
            status: Some(Status {
                code: 403,
                message: "no".into(),
                reason: "Forbidden",
                status: "Failure",
            }),
            patch_type: None,
            patch: None,
            warnings: &warnings,
            audit_annotations: &audit,
        };
        let v: Value = serde_json::from_slice(&render_response(&r)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": {
                "uid": "u", "allowed": false,
                "status": {"code": 403, "message": "no", "reason": "Forbidden", "status": "Failure"},
                "warnings": ["w"], "auditAnnotations": {"k": "v"}}})
        );
    }
}
