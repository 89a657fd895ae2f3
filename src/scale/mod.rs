//! Scaling: parse targets, plan against Milvus's rules, read and patch the owners, run the steps, wait.

pub mod bounds;
pub mod drain;
pub mod engine;
pub mod helm_record;
pub mod owner;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod target;
pub mod wait;
