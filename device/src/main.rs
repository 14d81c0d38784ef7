//! `vmso-device`: serves one vmso NIC over a vfio-user socket, with a TAP
//! device (or, for tests, a socketpair) as its wire.

use std::process::ExitCode;

use vmso_device::host::cli::parse_args;
use vmso_device::host::{launch, runtime};

/// RUST_LOG, overridden by --log-level; info without both.
fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::new();
    b.format_timestamp_millis();
    match (level, std::env::var("RUST_LOG")) {
        (Some(l), _) => b.parse_filters(l),
        (None, Ok(env)) if !env.is_empty() => b.parse_filters(&env),
        _ => b.parse_filters("info"),
    };
    b.init();
}

fn main() -> ExitCode {
    // Before any thread exists: only the signal thread takes the signals.
    runtime::block_signals();
    let args = parse_args();
    init_logging(args.log_level.as_deref());
    match launch::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmso-device: {e}");
            ExitCode::FAILURE
        }
    }
}
