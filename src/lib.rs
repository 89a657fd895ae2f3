//! kubectl-milvus as a library: the Kubernetes access, the Milvus model, the scale engine and the
//! output the `kubectl-milvus` binary is built from. The binary (`src/bin/kubectl-milvus/`) is the
//! thin layer on top: the command line, one module per subcommand, and exit codes.
//!
//! - [`client`]: the kube client from kubectl's flags, request logging, the concurrent reads.
//! - [`milvus`]: the model (releases, components, dependencies, pods, health); pure, no I/O.
//! - [`release`]: finding one named release (reads + discovery + where else it exists).
//! - [`helm`]: what Helm's record of a release says.
//! - [`gitops`]: reading the Argo CD Application or Flux HelmRelease that applies a release.
//! - [`scale`]: targets, the plan and its refusals, the owners' replicas, the step engine, waiting.
//! - [`output`]: tables, colour, diff, json/yaml.

pub mod client;
pub mod error;
pub mod gitops;
pub mod helm;
pub mod milvus;
pub mod output;
pub mod release;
pub mod scale;
