//! Self-signed CA, serving certificate and kubeconfig generation.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// Generated TLS material.
pub(crate) struct Tls {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A CA and a serving certificate for 127.0.0.1 / localhost signed by it.
pub(crate) fn generate() -> std::io::Result<Tls> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "milvus-test-api-ca");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).map_err(err)?;
    let mut sdn = DistinguishedName::new();
    sdn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = sdn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;

    let certs = vec![cert.der().clone(), ca_cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { ca_pem: ca_cert.pem(), server_config: Arc::new(cfg) })
}

/// Write a kubeconfig with one user and one context per `(user, token)`.
pub(crate) fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    users: &[(String, String)],
    current: &str,
    namespace: &str,
) -> std::io::Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let cfg = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "milvus-test", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": users.iter().map(|(u, t)| json!({"name": u, "user": {"token": t}})).collect::<Vec<_>>(),
        "contexts": users.iter().map(|(u, _)| json!({"name": u, "context": {"cluster": "milvus-test", "user": u, "namespace": namespace}})).collect::<Vec<_>>(),
        "current-context": current,
    });
    let text = serde_yaml::to_string(&cfg).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}
