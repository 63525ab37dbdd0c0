//! `brevet-store` on both engines, through its public API: every test runs once on SQLite (a
//! file in a temporary directory) and once on a throwaway PostgreSQL cluster (skipped, with the
//! reason printed, where the PostgreSQL server tools are missing).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

#[macro_use]
mod common;

mod audit;
mod devices;
mod grants;
mod people;
mod privileges;
mod requests;
mod restore;
