//! The probe: homerun's test workload, modelled on Knative's runtime conformance image.
//!
//! `probe` serves HTTP on `$PORT` and reports what its container sees (`server`: the sandbox,
//! files such as secret volumes, the metadata server, calls to other services with its
//! tokens); `probe job` runs as a Cloud Run job task. It is built as a fully static binary so
//! that it runs in an image that holds nothing else. Its one HTTP client (`client`) resolves
//! names through `/etc/hosts` only (`hosts`) and never sends a DNS query.

/// `println!` that never panics: a closed stdout (EPIPE) must not turn a clean exit into a
/// panic, since tests and the platform read the exit code.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod client;
mod health;
mod hosts;
mod job;
mod metadata;
mod report;
mod server;
mod signals;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say_err!("probe: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    report::watch_stdin();
    let code = match args.get(1).map(String::as_str) {
        Some("job") => runtime.block_on(job::run()),
        Some("--help") | Some("-h") => {
            say!("usage: probe [job]\n  probe       serve HTTP on $PORT\n  probe job   run as a Cloud Run job task");
            ExitCode::SUCCESS
        }
        _ => runtime.block_on(server::run()),
    };
    // Do not wait for blocking tasks (a `/write` in progress) once the decision to exit is made.
    runtime.shutdown_background();
    code
}
