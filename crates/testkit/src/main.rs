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
        _ => anyhow::bail!("usage: testkit build-images"),
    }
}
