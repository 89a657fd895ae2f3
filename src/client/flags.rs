//! kubectl's global flags (cli-runtime's `ConfigFlags`), accepted after `milvus` by every subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub const HEADING: &str = "Global options (as kubectl)";

#[derive(Debug, Clone, Default, Args)]
pub struct KubeFlags {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "PATH", help_heading = HEADING)]
    pub kubeconfig: Option<PathBuf>,

    /// The name of the kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME", help_heading = HEADING)]
    pub context: Option<String>,

    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME", help_heading = HEADING)]
    pub cluster: Option<String>,

    /// The name of the kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME", help_heading = HEADING)]
    pub user: Option<String>,

    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE", help_heading = HEADING)]
    pub namespace: Option<String>,

    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true, value_name = "URL", help_heading = HEADING)]
    pub server: Option<String>,

    /// Bearer token for authentication to the API server.
    #[arg(long, global = true, value_name = "TOKEN", help_heading = HEADING, hide_env_values = true)]
    pub token: Option<String>,

    /// Path to a cert file for the certificate authority.
    #[arg(long, global = true, value_name = "PATH", help_heading = HEADING)]
    pub certificate_authority: Option<PathBuf>,

    /// Path to a client certificate file for TLS.
    #[arg(long, global = true, value_name = "PATH", help_heading = HEADING)]
    pub client_certificate: Option<PathBuf>,

    /// Path to a client key file for TLS.
    #[arg(long, global = true, value_name = "PATH", help_heading = HEADING)]
    pub client_key: Option<PathBuf>,

    /// If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure.
    #[arg(long, global = true, help_heading = HEADING, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_skip_tls_verify: bool,

    /// Server name to use for server certificate validation. If it is not provided, the hostname used to contact the server is used.
    #[arg(long, global = true, value_name = "NAME", help_heading = HEADING)]
    pub tls_server_name: Option<String>,

    /// Username to impersonate for the operation. User could be a regular user or a service account in a namespace.
    #[arg(long = "as", global = true, value_name = "USER", help_heading = HEADING)]
    pub as_user: Option<String>,

    /// Group to impersonate for the operation, this flag can be repeated to specify multiple groups.
    #[arg(long = "as-group", global = true, value_name = "GROUP", help_heading = HEADING)]
    pub as_group: Vec<String>,

    /// The length of time to wait before giving up on a single server request. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests. Without it a request gives up after 60s, and connecting after 10s.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_request_timeout, help_heading = HEADING)]
    pub request_timeout: Option<RequestTimeout>,

    /// Return large lists in chunks rather than all at once. Pass 0 to disable.
    #[arg(long, global = true, value_name = "N", default_value_t = 500, help_heading = HEADING)]
    pub chunk_size: u32,

    /// Number for the log level verbosity; 6 and above log every HTTP request (method, URL, status, latency).
    #[arg(short = 'v', long = "v", global = true, value_name = "LEVEL", default_value_t = 0, help_heading = HEADING)]
    pub verbosity: u8,
}

/// `--request-timeout`: `None` means no timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTimeout(pub Option<Duration>);

/// Parses kubectl's `--request-timeout`: `0` (no timeout), a bare number of seconds, or a duration with
/// units such as `1s`, `2m`, `3h`, `1m30s`, `500ms`.
pub fn parse_request_timeout(value: &str) -> Result<RequestTimeout, String> {
    let value = value.trim();
    let invalid = || {
        format!(
            "invalid timeout value {value:?}. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)"
        )
    };
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(RequestTimeout((seconds > 0).then(|| Duration::from_secs(seconds))));
    }
    let duration = humantime::parse_duration(value).map_err(|_| invalid())?;
    Ok(RequestTimeout((!duration.is_zero()).then_some(duration)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeout_accepts_kubectl_forms() {
        assert_eq!(parse_request_timeout("0"), Ok(RequestTimeout(None)));
        assert_eq!(parse_request_timeout("0s"), Ok(RequestTimeout(None)));
        assert_eq!(parse_request_timeout("5"), Ok(RequestTimeout(Some(Duration::from_secs(5)))));
        assert_eq!(parse_request_timeout("1s"), Ok(RequestTimeout(Some(Duration::from_secs(1)))));
        assert_eq!(parse_request_timeout("2m"), Ok(RequestTimeout(Some(Duration::from_secs(120)))));
        assert_eq!(parse_request_timeout("3h"), Ok(RequestTimeout(Some(Duration::from_secs(10800)))));
        assert_eq!(parse_request_timeout("1m30s"), Ok(RequestTimeout(Some(Duration::from_secs(90)))));
        assert_eq!(parse_request_timeout("500ms"), Ok(RequestTimeout(Some(Duration::from_millis(500)))));
    }

    #[test]
    fn request_timeout_rejects_garbage() {
        assert!(parse_request_timeout("soon").is_err());
        assert!(parse_request_timeout("-1").is_err());
        assert!(parse_request_timeout("").is_err());
    }
}
