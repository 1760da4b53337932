//! Kept for test files that include it by path (`#[path = "common/fault_server.rs"] mod
//! fault_server;`): the fault fixtures are part of the one loopback fixture server,
//! `common/fixture_server.rs`.
#![allow(unused_imports)]

pub use crate::common::fixture_server::*;
