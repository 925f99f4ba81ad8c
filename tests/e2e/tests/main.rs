//! The product's end-to-end tests, one module per concern, linked into one
//! test binary per build of the components: every binary links wasmtime, and
//! one binary instead of one per file keeps a cold CI build to a fraction of
//! the disk and link time.
//!
//! This binary (`e2e`) runs the suite on the p3 build (Spin 4), or on the
//! build `E2E_BUILD` names, plus the p2 checks of `p2.rs`; `e2e_p2`
//! (`main_p2.rs`) runs the same suite on the p2 build (Spin 3.x,
//! containerd-shim-spin v0.24). Run one concern with a name filter, for
//! example `cargo test -p e2e --test e2e vouchers::`.

include!("suite.rs");
mod p2;
