//! The end-to-end suite of `main.rs` on the p2 build of the components
//! (spin-sdk 5, `wasi:http/incoming-handler@0.2`, what Spin 3.x and
//! containerd-shim-spin v0.24 host): `e2e::wasm_build::Build::from_env`
//! chooses p2 for every host of this binary (`e2e_p2`) unless `E2E_BUILD`
//! says otherwise. `cargo test -p e2e --test e2e_p2 vouchers::` runs one
//! concern.

include!("suite.rs");
