//! Integration tests: the real `kubectl-milvus` binary, run directly and as `kubectl milvus`, against the
//! loopback Kubernetes API of `milvus-test-api`.

// Test code: a failed unwrap is a failed test, with the message that says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod autoscaler;
mod cli;
mod distribution;
mod fixtures;
mod helm;
mod helm_record;
mod hostile;
mod list;
mod owners;
mod rbac;
mod scale;
mod scale_drain;
mod scale_preflight;
mod serving;
mod status;
mod status_dependencies;
mod support;
