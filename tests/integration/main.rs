//! Integration tests: the real `kubectl-milvus` binary, run directly and as `kubectl milvus`, against the
//! loopback Kubernetes API of `milvus-test-api`.

mod cli;
mod distribution;
mod fixtures;
mod list;
mod rbac;
mod scale;
mod status;
mod support;
