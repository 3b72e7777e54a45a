//! Helpers shared by the core's integration tests (each test file uses some of them).
#![allow(dead_code)]

pub mod offers;
pub mod rules;
