//! The product's end-to-end tests, one module per concern, linked into one
//! test binary: every binary links wasmtime, and one binary instead of nine
//! keeps a cold CI build to a fraction of the disk and link time.
//!
//! Run one concern with a name filter, for example
//! `cargo test -p e2e --test e2e vouchers::`.

mod common;

mod audit;
mod class_opening;
mod harness;
mod key_rotation;
mod logging;
mod manifests;
mod p2;
mod redis_backend;
mod redis_spin402;
mod spot_checks;
mod voucher_races;
mod vouchers;
mod wechat;
