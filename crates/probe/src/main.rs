//! The probe: homerun's test workload, modelled on Knative's runtime conformance image.
//!
//! `probe` serves HTTP on `$PORT` and reports what its container sees; `probe job` runs as a
//! Cloud Run job task. It is built as a fully static binary so that it runs in an image that
//! holds nothing else.

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
            eprintln!("probe: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    report::watch_stdin();
    match args.get(1).map(String::as_str) {
        Some("job") => runtime.block_on(job::run()),
        Some("--help") | Some("-h") => {
            println!("usage: probe [job]\n  probe       serve HTTP on $PORT\n  probe job   run as a Cloud Run job task");
            ExitCode::SUCCESS
        }
        _ => runtime.block_on(server::run()),
    }
}
