//! The Kubernetes client: kubeconfig loading with kubectl's overrides, request logging, error mapping.

pub mod flags;
pub mod follow;
mod logging;
pub mod milvus_config;
pub mod milvus_http;
pub mod names;
mod page;
pub mod policy;
pub mod read;
pub mod selector;
mod slim;
mod transport;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use secrecy::SecretString;

pub use flags::KubeFlags;
use policy::{Deadlines, ReadRetry};
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;
use tower::util::option_layer;

use crate::error::Error;

/// A connected client plus what commands need to know about where it points.
#[derive(Clone)]
pub struct Kube {
    pub client: Client,
    /// The namespace from `-n`, else the context's, else `default`.
    pub namespace: String,
    /// `host:port` of the API server, for error messages.
    pub server: String,
    /// Objects per list request (`--chunk-size`; 0: every list in one reply).
    pub chunk_size: u32,
    /// How long an open connection may stay silent (`--request-timeout`, else 60 s): watches ask the
    /// server to end them before that, so that a quiet watch is renewed rather than cut off.
    pub read_timeout: std::time::Duration,
}

impl Kube {
    /// Builds a client from the global flags, exactly as kubectl would resolve them.
    pub async fn connect(flags: &KubeFlags) -> Result<Self, Error> {
        let (config, deadlines) = resolve_config(flags).await?;
        let server = server_display(&config.cluster_url);
        let namespace = config.default_namespace.clone();
        let base_url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let builder = match transport::client_builder(&config).map_err(|e| Error::Config(e.to_string()))? {
            Some(builder) => builder,
            None => {
                kube::client::ClientBuilder::try_from(config).map_err(|e| Error::Config(e.to_string()))?
            }
        };
        // Innermost first: a cloneable stack (retries send a request again), each attempt logged, reads
        // retried, and the whole within the request deadline.
        let client = builder
            .with_layer(&BufferLayer::new(64))
            .with_layer(&logging::RequestLogLayer::new(flags.verbosity, &base_url))
            .with_layer(&RetryLayer::new(ReadRetry::new()))
            .with_layer(&option_layer(deadlines.request.map(TimeoutLayer::new)))
            .build();
        Ok(Self { client, namespace, server, chunk_size: flags.chunk_size, read_timeout: deadlines.read })
    }
}

fn server_display(uri: &http::Uri) -> String {
    uri.authority().map(|a| a.to_string()).unwrap_or_else(|| uri.to_string())
}

/// Resolves the kubeconfig (with `$KUBECONFIG` merging) and applies the command-line overrides.
async fn resolve_config(flags: &KubeFlags) -> Result<(Config, Deadlines), Error> {
    let kubeconfig = match load_kubeconfig(flags)? {
        Some(kubeconfig) => Some(kubeconfig),
        // `--server` alone is enough: a synthetic kubeconfig keeps all parsing (CA files, keys) in kube-rs.
        None if flags.server.is_some() => Some(Kubeconfig::default()),
        None => None,
    };
    let mut config = match kubeconfig {
        Some(mut kubeconfig) => {
            let options = apply_overrides(&mut kubeconfig, flags)?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(kubeconfig_error)?
        }
        None => Config::incluster().map_err(|_| Error::NoConfiguration)?,
    };
    // An empty -n means the default, as in kubectl: the context's namespace, else `default`.
    if let Some(namespace) = flags.namespace.as_ref().filter(|n| !n.is_empty()) {
        config.default_namespace = namespace.clone();
    }
    if config.default_namespace.is_empty() {
        config.default_namespace = "default".into();
    }
    names::check_namespace(&config.default_namespace).map_err(Error::Usage)?;
    // Reads are retried by our own policy (policy.rs), which never sends a write twice.
    config.default_retry = false;
    let deadlines = Deadlines::from_flag(flags.request_timeout.map(|t| t.0));
    config.connect_timeout = Some(deadlines.connect);
    config.read_timeout = Some(deadlines.read);
    Ok((config, deadlines))
}

/// `--kubeconfig`, else `$KUBECONFIG` (several files merged, first wins; files that do not exist are
/// skipped, as kubectl skips them), else `~/.kube/config` if it exists.
pub fn load_kubeconfig(flags: &KubeFlags) -> Result<Option<Kubeconfig>, Error> {
    if let Some(path) = &flags.kubeconfig {
        if !path.exists() {
            return Err(Error::Config(format!("stat {}: no such file or directory", path.display())));
        }
        return Kubeconfig::read_from(path).map(Some).map_err(kubeconfig_error);
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let mut merged: Option<Kubeconfig> = None;
        for path in std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty() && p.exists()) {
            let next = Kubeconfig::read_from(&path).map_err(kubeconfig_error)?;
            merged = Some(match merged {
                None => next,
                Some(first) => first.merge(next).map_err(kubeconfig_error)?,
            });
        }
        return Ok(merged);
    }
    match home_kubeconfig() {
        Some(path) if path.exists() => Kubeconfig::read_from(path).map(Some).map_err(kubeconfig_error),
        _ => Ok(None),
    }
}

fn home_kubeconfig() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".kube").join("config"))
}

const SYNTHETIC: &str = "kubectl-milvus-flags";

/// Applies kubectl's override flags to the selected context's cluster and user, as client-go's
/// `ConfigOverrides` do, and returns the options that select them.
fn apply_overrides(kubeconfig: &mut Kubeconfig, flags: &KubeFlags) -> Result<KubeConfigOptions, Error> {
    use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};

    let context_name = match flags.context.clone().or_else(|| kubeconfig.current_context.clone()) {
        Some(name) => name,
        None if flags.server.is_some() => {
            kubeconfig.contexts.push(NamedContext {
                name: SYNTHETIC.into(),
                context: Some(Context {
                    cluster: SYNTHETIC.into(),
                    user: Some(SYNTHETIC.into()),
                    ..Default::default()
                }),
                other: Default::default(),
            });
            SYNTHETIC.into()
        }
        None => return Err(Error::NoConfiguration),
    };
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| {
            Error::Config(format!("context was not found for specified context: {context_name}"))
        })?;

    let cluster_name = flags.cluster.clone().unwrap_or_else(|| context.cluster.clone());
    let cluster_overridden = flags.server.is_some()
        || flags.certificate_authority.is_some()
        || flags.insecure_skip_tls_verify
        || flags.tls_server_name.is_some();
    if !kubeconfig.clusters.iter().any(|c| c.name == cluster_name) {
        if flags.server.is_none() {
            return Err(Error::Config(format!("cluster \"{cluster_name}\" does not exist")));
        }
        kubeconfig.clusters.push(NamedCluster {
            name: cluster_name.clone(),
            cluster: Some(Cluster::default()),
            other: Default::default(),
        });
    }
    if cluster_overridden {
        if flags.insecure_skip_tls_verify && flags.certificate_authority.is_some() {
            return Err(Error::Config(
                "specifying a root certificates file with the insecure flag is not allowed".into(),
            ));
        }
        if let Some(named) = kubeconfig.clusters.iter_mut().find(|c| c.name == cluster_name) {
            let cluster = named.cluster.get_or_insert_with(Cluster::default);
            if let Some(server) = &flags.server {
                cluster.server = Some(server.clone());
            }
            if let Some(ca) = &flags.certificate_authority {
                cluster.certificate_authority = Some(absolute(ca));
                cluster.certificate_authority_data = None;
            }
            if flags.insecure_skip_tls_verify {
                cluster.insecure_skip_tls_verify = Some(true);
                cluster.certificate_authority = None;
                cluster.certificate_authority_data = None;
            }
            if let Some(name) = &flags.tls_server_name {
                cluster.tls_server_name = Some(name.clone());
            }
        }
    }

    let user_name = flags.user.clone().or_else(|| context.user.clone()).unwrap_or_else(|| SYNTHETIC.into());
    if !kubeconfig.auth_infos.iter().any(|u| u.name == user_name) {
        if flags.user.is_some() {
            return Err(Error::Config(format!("auth info \"{user_name}\" does not exist")));
        }
        kubeconfig.auth_infos.push(NamedAuthInfo {
            name: user_name.clone(),
            auth_info: Some(AuthInfo::default()),
            other: Default::default(),
        });
    }
    if let Some(named) = kubeconfig.auth_infos.iter_mut().find(|u| u.name == user_name) {
        let user = named.auth_info.get_or_insert_with(AuthInfo::default);
        if let Some(token) = &flags.token {
            user.token = Some(SecretString::from(token.clone()));
            user.token_file = None;
            user.exec = None;
            user.auth_provider = None;
        }
        if let Some(cert) = &flags.client_certificate {
            user.client_certificate = Some(absolute(cert));
            user.client_certificate_data = None;
        }
        if let Some(key) = &flags.client_key {
            user.client_key = Some(absolute(key));
            user.client_key_data = None;
        }
        if let Some(who) = &flags.as_user {
            user.impersonate = Some(who.clone());
        }
        if !flags.as_group.is_empty() {
            user.impersonate_groups = Some(flags.as_group.clone());
        }
    }

    Ok(KubeConfigOptions { context: Some(context_name), cluster: Some(cluster_name), user: Some(user_name) })
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
}

fn kubeconfig_error(error: KubeconfigError) -> Error {
    match error {
        KubeconfigError::LoadContext(name) => {
            Error::Config(format!("context was not found for specified context: {name}"))
        }
        KubeconfigError::LoadClusterOfContext(name) => {
            Error::Config(format!("cluster \"{name}\" does not exist"))
        }
        KubeconfigError::CurrentContextNotSet => Error::NoConfiguration,
        // Messages of kube-rs name files and settings, never their contents.
        other => Error::Config(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(
            r#"
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: team}
- name: prod
  context: {cluster: c2, user: u2}
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443"}
- name: c2
  cluster: {server: "https://10.0.0.1:6443"}
users:
- name: u1
  user: {token: abc}
- name: u2
  user: {token: def}
"#,
        )
        .expect("valid kubeconfig")
    }

    #[tokio::test]
    async fn context_namespace_is_the_default() {
        let mut kc = kubeconfig();
        let options = apply_overrides(&mut kc, &KubeFlags::default()).expect("overrides");
        let config = Config::from_custom_kubeconfig(kc, &options).await.expect("config");
        assert_eq!(config.default_namespace, "team");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
    }

    #[tokio::test]
    async fn flags_override_context_cluster_and_user() {
        let mut kc = kubeconfig();
        let flags = KubeFlags {
            context: Some("prod".into()),
            server: Some("https://192.0.2.1:443".into()),
            as_user: Some("jane".into()),
            as_group: vec!["devs".into(), "ops".into()],
            insecure_skip_tls_verify: true,
            ..Default::default()
        };
        let options = apply_overrides(&mut kc, &flags).expect("overrides");
        let config = Config::from_custom_kubeconfig(kc, &options).await.expect("config");
        assert_eq!(config.default_namespace, "default");
        assert_eq!(config.cluster_url.to_string(), "https://192.0.2.1:443/");
        assert!(config.accept_invalid_certs);
        assert_eq!(config.auth_info.impersonate.as_deref(), Some("jane"));
        assert_eq!(config.auth_info.impersonate_groups, Some(vec!["devs".to_string(), "ops".to_string()]));
    }

    #[test]
    fn unknown_context_is_an_error() {
        let mut kc = kubeconfig();
        let flags = KubeFlags { context: Some("nope".into()), ..Default::default() };
        let error = apply_overrides(&mut kc, &flags).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("context was not found for specified context: nope"));
    }

    #[test]
    fn insecure_with_ca_file_is_refused() {
        let mut kc = kubeconfig();
        let flags = KubeFlags {
            insecure_skip_tls_verify: true,
            certificate_authority: Some("/tmp/ca.crt".into()),
            ..Default::default()
        };
        assert!(apply_overrides(&mut kc, &flags).is_err());
    }
}
