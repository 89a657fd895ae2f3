//! The errors a command can end with, and how each reaches the user (kubectl's wording and exit codes).

use std::fmt;

/// Exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any error: bad input, API error, connection failure, release not found.
    pub const ERROR: u8 = 1;
    /// `status --exit-code`: the release is not Healthy.
    pub const UNHEALTHY: u8 = 3;
    /// `scale` was interrupted (Ctrl-C) before it finished; what was applied is reported.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kubeconfig or flag combination problems (`error: …`).
    #[error("{0}")]
    Config(String),

    #[error(
        "no configuration has been provided: set KUBECONFIG, pass --kubeconfig, or give --server (and credentials)"
    )]
    NoConfiguration,

    /// Invalid input that clap could not catch (`error: …`).
    #[error("{0}")]
    Usage(String),

    /// A request to the API server failed.
    #[error("{}", api_error_message(.source, .server))]
    Api {
        #[source]
        source: kube::Error,
        server: String,
    },

    /// A command could not do what was asked; the message says what and, where it matters, what was done.
    #[error("{0}")]
    Failed(String),

    /// A command stopped midway: why, and what it had done by then.
    #[error("{cause}\n{applied}")]
    Stopped { cause: Box<Error>, applied: String },

    /// The named release does not exist where we looked; the message says where it does.
    #[error("{0}")]
    ReleaseNotFound(String),

    /// Writing the output failed (a closed pipe is not an error: see [`Error::is_broken_pipe`]).
    #[error("{0}")]
    Io(#[from] std::io::Error),

    /// Output serialisation failed.
    #[error("{0}")]
    Serialize(String),

    /// The command ran and wants a particular non-zero exit code without an error message
    /// (e.g. `status --exit-code` on an unhealthy release).
    #[error("")]
    Exit(u8),
}

impl Error {
    pub fn api(source: kube::Error, server: &str) -> Self {
        Error::Api { source, server: server.to_string() }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Exit(code) => *code,
            _ => exit::ERROR,
        }
    }

    /// A closed stdout (`kubectl milvus list | head -1`) ends the program quietly and successfully.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// True when the message already carries its own prefix (`Error from server …`, `The connection …`).
    pub fn has_own_prefix(&self) -> bool {
        match self {
            Error::Api { source, .. } => !matches!(source, kube::Error::SerdeError(_)),
            Error::Stopped { cause, .. } => cause.has_own_prefix(),
            _ => false,
        }
    }
}

/// kubectl's wording: `Error from server (NotFound): …`, `The connection to the server … was refused …`.
fn api_error_message(error: &kube::Error, server: &str) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() { "Unknown".to_string() } else { status.reason.clone() };
            format!("Error from server ({reason}): {}", status.message)
        }
        e if connection_refused(e) => {
            format!(
                "The connection to the server {server} was refused - did you specify the right host or port?"
            )
        }
        e if is_timeout(e) => {
            format!("Unable to connect to the server {server}: the request timed out (see --request-timeout)")
        }
        kube::Error::SerdeError(e) => {
            format!("the response of the server {server} could not be decoded: {e}")
        }
        e => format!("Unable to connect to the server {server}: {}", root_cause(e)),
    }
}

fn sources<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

fn connection_refused(error: &kube::Error) -> bool {
    sources(error).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

fn is_timeout(error: &kube::Error) -> bool {
    sources(error).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.to_string().contains("timed out")
            || e.to_string().contains("deadline has elapsed")
    })
}

/// The innermost message, which is the one a person can act on (`certificate verify failed`, …).
fn root_cause(error: &kube::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    for e in sources(error) {
        last = e;
    }
    Trimmed(last).to_string()
}

struct Trimmed<'a>(&'a dyn std::error::Error);

impl fmt::Display for Trimmed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_string().trim())
    }
}
