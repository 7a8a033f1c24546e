//! Test support (feature `test-support`): certificate authorities made with
//! rcgen, a blocking HTTPS client with keep-alive, an async one for load
//! generation, and `AdmissionReview` builders. Not part of the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};

/// A certificate authority, a server certificate for `localhost` and
/// `127.0.0.1`, and a client CA with one client certificate, as PEM files in
/// a directory.
pub struct Pki {
    pub dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
    pub ca_pem: String,
    pub client_ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

fn new_ca(cn: &str) -> Result<(Issuer<'static, KeyPair>, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), cert.pem()))
}

impl Pki {
    /// Creates the files `ca.pem`, `tls.crt`, `tls.key`, `client-ca.pem` in `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        let (ca, ca_pem) = new_ca("rampart test CA")?;
        let (client_ca, client_ca_pem) = new_ca("rampart test client CA")?;
        let client_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = params.signed_by(&client_key, &client_ca)?;
        let pki = Self {
            dir: dir.to_owned(),
            ca,
            ca_pem,
            client_ca_pem,
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        };
        std::fs::write(pki.ca_path(), &pki.ca_pem)?;
        std::fs::write(pki.client_ca_path(), &pki.client_ca_pem)?;
        pki.write_server_cert("rampart-1")?;
        Ok(pki)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    pub fn client_ca_path(&self) -> PathBuf {
        self.dir.join("client-ca.pem")
    }

    /// A server certificate for localhost and 127.0.0.1 with common name `cn`:
    /// `(certificate PEM, key PEM)`.
    pub fn server_cert(&self, cn: &str) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Replaces `tls.crt` and `tls.key` with a new pair, each by an atomic
    /// rename (as a mounted Secret changes); returns the certificate's DER.
    pub fn write_server_cert(&self, cn: &str) -> Result<Vec<u8>> {
        let (cert, key) = self.server_cert(cn)?;
        for (path, text) in [(self.key_path(), &key), (self.cert_path(), &cert)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(CertificateDer::from_pem_slice(cert.as_bytes())?.to_vec())
    }
}

pub use {base64, rustls};

/// A TLS client configuration trusting `ca_pem`, with an optional client
/// certificate `(cert PEM, key PEM)`, ALPN http/1.1.
pub fn client_config(ca_pem: &str, client: Option<(&str, &str)>) -> Result<Arc<ClientConfig>> {
    client_config_versions(ca_pem, client, rustls::DEFAULT_VERSIONS)
}

/// [`client_config`] offering only `versions`.
pub fn client_config_versions(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let builder = ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => {
            let certs =
                CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response ({}) is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

/// A blocking HTTPS/1.1 client on one keep-alive connection.
pub struct Client {
    stream: StreamOwned<ClientConnection, TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Self> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_nodelay(true)?;
        let conn = ClientConnection::new(config, ServerName::try_from("localhost")?.to_owned())?;
        let mut stream = StreamOwned::new(conn, tcp);
        // Finish the handshake now so failures show here.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .context("TLS handshake")?;
        }
        Ok(Self { stream })
    }

    /// The DER of the server's leaf certificate.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.stream.flush()?;
        read_response(&mut self.stream)
    }

    pub fn post_json(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse> {
        self.request("POST", path, &[("Content-Type", "application/json")], body)
    }

    /// POSTs a review and returns its `response`, failing unless the status is 200.
    pub fn review(&mut self, path: &str, review: &Value) -> Result<Value> {
        let resp = self.post_json(path, &serde_json::to_vec(review)?)?;
        if resp.status != 200 {
            bail!("status {}: {}", resp.status, resp.text());
        }
        let v = resp.json();
        if v["response"]["uid"] != review["request"]["uid"] {
            bail!("response uid does not match: {v}");
        }
        Ok(v["response"].clone())
    }
}

/// Reads one HTTP/1.1 response (Content-Length or chunked).
pub fn read_response(stream: &mut impl Read) -> Result<HttpResponse> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        bail!("connection closed before a response");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        body.resize(len.parse()?, 0);
        reader.read_exact(&mut body)?;
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    // Bytes buffered past this response would belong to a pipelined next
    // one; this client never pipelines.
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// An `AdmissionReview` request under construction.
#[derive(Clone, Debug)]
pub struct Review {
    request: Value,
}

/// The plural resource of a kind (`Deployment` → `deployments`).
pub fn resource_for(group: &str, kind: &str) -> String {
    rampart_core::kinds::resource_of(group, kind)
}

impl Review {
    /// A review of `object` for `operation` (`CREATE`, `UPDATE`, ...): kind,
    /// resource, name and namespace come from the object.
    pub fn of(operation: &str, object: Value) -> Self {
        let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_owned();
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        let kind = object["kind"].as_str().unwrap_or("").to_owned();
        let resource = resource_for(&group, &kind);
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let uid = next_uid();
        let mut request = json!({
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "uid": "1", "groups": ["developers", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        });
        if operation == "DELETE" {
            request["oldObject"] = request["object"].take();
        }
        Self { request }
    }

    /// A CONNECT to `pods/<subresource>` (`exec`, `attach`) of a pod.
    pub fn connect(subresource: &str, namespace: &str, pod: &str) -> Self {
        let kind = if subresource == "attach" {
            "PodAttachOptions"
        } else {
            "PodExecOptions"
        };
        Self {
            request: json!({
                "uid": next_uid(),
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "subResource": subresource,
                "name": pod,
                "namespace": namespace,
                "operation": "CONNECT",
                "userInfo": {"username": "alice", "groups": ["developers", "system:authenticated"]},
                "object": {"apiVersion": "v1", "kind": kind, "stdin": true, "tty": true, "container": "app", "command": ["sh"]},
                "oldObject": null,
                "dryRun": false,
            }),
        }
    }

    /// A DELETE of a cluster-scoped Namespace.
    pub fn delete_namespace(name: &str) -> Self {
        let mut r = Self::of(
            "DELETE",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        );
        // The API server reports a namespace's own name as its namespace.
        r.request["namespace"] = json!(name);
        r
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.request["namespace"] = json!(ns);
        if let Some(obj) = self.request["object"].as_object_mut()
            && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("namespace".into(), json!(ns));
        }
        self
    }

    pub fn user(mut self, name: &str, groups: &[&str]) -> Self {
        self.request["userInfo"] = json!({"username": name, "groups": groups});
        self
    }

    pub fn subresource(mut self, sub: &str) -> Self {
        self.request["subResource"] = json!(sub);
        self
    }

    pub fn old_object(mut self, old: Value) -> Self {
        self.request["oldObject"] = old;
        self
    }

    pub fn uid(&self) -> &str {
        self.request["uid"].as_str().unwrap_or("")
    }

    /// The whole `AdmissionReview`.
    pub fn json(&self) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": self.request})
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json()).expect("serialising a review")
    }
}

fn next_uid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The JSON Patch of a response, decoded; empty when there is none.
pub fn patch_of(response: &Value) -> Vec<json_patch::PatchOperation> {
    let Some(b64) = response["patch"].as_str() else {
        return Vec::new();
    };
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("patch is base64");
    serde_json::from_slice(&bytes).expect("patch is a JSON Patch")
}

/// `object` with the response's patch applied.
pub fn patched(object: &Value, response: &Value) -> Value {
    let mut v = object.clone();
    json_patch::patch(&mut v, &patch_of(response)).expect("patch applies");
    v
}

/// A pod with one container, `image`, in `namespace`.
pub fn pod(name: &str, namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]}
    })
}

/// A pod that passes `restricted:latest` and the best practices.
pub fn restricted_pod(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app",
                "image": "ghcr.io/acme/app:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}
            }]
        }
    })
}

/// A Deployment whose template is `pod`'s metadata and spec.
pub fn deployment(name: &str, namespace: &str, pod: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod["spec"].clone()}}
    })
}

/// One POST over HTTP/2 (ALPN `h2`) on a fresh connection: `(status, body,
/// negotiated ALPN protocol)`.
pub fn h2_post(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>, Option<String>)> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ca_pem = ca_pem.to_owned();
    let path = path.to_owned();
    rt.block_on(async move {
        let mut config = (*client_config(&ca_pem, None)?).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = connector
            .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
            .await?;
        let alpn = tls
            .get_ref()
            .1
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("https://localhost{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = send.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes.to_vec(), alpn))
    })
}

/// A plain-HTTP GET (health and metrics port).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<HttpResponse> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    read_response(&mut tcp)
}
