//! `testkit`: builds the static probe and the test images ahead of the test run, and prints
//! where they are.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build-images") => {
            let c = testkit::catalogue().context("building the test images")?;
            for image in c.images.values() {
                println!("{:<18} {}  {}", image.name, image.source, image.description);
            }
            for (name, path) in &c.archives {
                println!("{name:<18} {}", path.display());
            }
            Ok(())
        }
        Some("bench-image") => {
            let out = args
                .get(1)
                .context("usage: testkit bench-image DIR [MIB] [LAYERS]")?;
            let mib = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100);
            let layers = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5);
            let dir = testkit::bench::build_bench_image(std::path::Path::new(out), mib, layers)?;
            println!("{}", dir.display());
            Ok(())
        }
        _ => anyhow::bail!("usage: testkit build-images | testkit bench-image DIR [MIB] [LAYERS]"),
    }
}
