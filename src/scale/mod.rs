//! Scaling: parse targets, plan against Milvus's rules, diff, apply through the owner, wait.

pub mod apply;
pub mod helm;
pub mod plan;
pub mod target;
pub mod wait;
