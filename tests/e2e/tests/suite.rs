// The modules of the end-to-end suite, included by both test binaries
// (`main.rs`: the p3 build; `main_p2.rs`: the p2 build).

mod common;

mod audit;
mod class_opening;
mod harness;
mod key_rotation;
mod logging;
mod manifests;
mod redis_backend;
mod redis_spin402;
mod spot_checks;
mod voucher_races;
mod vouchers;
mod wechat;
