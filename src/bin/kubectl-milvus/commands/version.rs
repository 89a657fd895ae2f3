//! `kubectl milvus version`: the plugin's version and the API server's.

use std::io::Write;

use serde::Serialize;

use kubectl_milvus::client::{Kube, KubeFlags};
use kubectl_milvus::error::Error;
use kubectl_milvus::output::{self, Structured};

pub const ABOUT: &str = "Print the plugin version and the API server version";

pub const LONG_ABOUT: &str = "\
Print the plugin version and the API server version.

With --client only the plugin's version is printed and the cluster is not contacted. -o json and
-o yaml also show the git commit the plugin was built from.";

pub const EXAMPLES: &str = "\
Examples:
  # Print the plugin and server versions
  kubectl milvus version

  # Only the plugin version, without contacting the cluster
  kubectl milvus version --client

  # As JSON, for scripts
  kubectl milvus version -o json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the plugin version only; do not contact the server.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub client: bool,

    /// Output format: json or yaml.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = parse_format)]
    pub output: Option<Structured>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Versions {
    client_version: ClientVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<ServerVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientVersion {
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_commit: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerVersion {
    git_version: String,
    major: String,
    minor: String,
    platform: String,
}

fn client_version() -> ClientVersion {
    ClientVersion {
        version: concat!("v", env!("CARGO_PKG_VERSION")),
        git_commit: option_env!("KUBECTL_MILVUS_GIT_COMMIT"),
    }
}

/// `-o`, refused in `kubectl version`'s own words.
fn parse_format(value: &str) -> Result<Structured, String> {
    output::parse_format::<Structured>(value)
        .map_err(|_| format!("--output must be 'yaml' or 'json', not {value}"))
}

pub async fn run(flags: &KubeFlags, args: Args, out: &mut dyn Write) -> Result<(), Error> {
    let client = client_version();
    let mut versions = Versions { client_version: client, server_version: None };
    let server = if args.client {
        Ok(())
    } else {
        match fetch_server_version(flags).await {
            Ok(server) => {
                versions.server_version = Some(server);
                Ok(())
            }
            Err(error) => Err(error),
        }
    };
    match args.output {
        Some(format) => output::write_structured(out, format, &versions)?,
        None => {
            // As kubectl prints its own: the version alone; the commit is in -o json|yaml (gitCommit).
            writeln!(out, "Client Version: {}", versions.client_version.version)?;
            if let Some(server) = &versions.server_version {
                writeln!(out, "Server Version: {}", server.git_version)?;
            }
        }
    }
    server
}

async fn fetch_server_version(flags: &KubeFlags) -> Result<ServerVersion, Error> {
    let kube = Kube::connect(flags).await?;
    let info = kube.client.apiserver_version().await.map_err(|e| Error::api(e, &kube.server))?;
    Ok(ServerVersion {
        git_version: info.git_version,
        major: info.major,
        minor: info.minor,
        platform: info.platform,
    })
}
