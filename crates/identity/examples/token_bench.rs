//! What checking a caller costs on the request path: `Authority::verify` of an ID token
//! (RS256), of an access token (HMAC) and of the admin token, and what issuing costs, each
//! as the median and spread of N timed batches. Release build:
//! `cargo run --release -p identity --example token_bench -- [batches] [per-batch]`.

use std::time::Instant;

use identity::Authority;

fn measure(name: &str, batches: usize, per: usize, mut f: impl FnMut()) {
    let mut per_op: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / per as f64
        })
        .collect();
    per_op.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<28} median {:>8.2} us  min {:>8.2}  max {:>8.2}  ({batches} x {per})",
        per_op[per_op.len() / 2],
        per_op[0],
        per_op[per_op.len() - 1]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(11);
    let per: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let a = Authority::open(dir.path(), "http://127.0.0.1:8090").unwrap();
    let now = identity::now();
    let email = "bench@local.iam.gserviceaccount.com";
    let id = a.id_token(email, "http://b.localhost:8080", now).unwrap();
    let access = a.access_token(email, now).token;
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let admin = admin.trim().to_string();
    // A token never seen before each time: the RS256 check itself (signing them first
    // costs most of this benchmark's time).
    let fresh_per = (per / 10).max(1);
    let fresh: Vec<String> = (0..batches * fresh_per)
        .map(|i| a.id_token(email, &format!("aud-{i}"), now).unwrap())
        .collect();
    let mut i = 0;
    measure("verify new ID token (RS256)", batches, fresh_per, || {
        a.verify(&fresh[i], now).unwrap();
        i += 1;
    });
    measure("verify ID token again", batches, per, || {
        a.verify(&id, now).unwrap();
    });
    measure("verify access token (HMAC)", batches, per, || {
        a.verify(&access, now).unwrap();
    });
    measure("verify admin token", batches, per, || {
        a.verify(&admin, now).unwrap();
    });
    measure("issue ID token (RS256 sign)", batches, per / 10, || {
        a.id_token(email, "aud", now).unwrap();
    });
    measure("issue access token", batches, per, || {
        a.access_token(email, now);
    });
}
