//! A large multi-layer image for benchmarks: incompressible file contents from a fixed
//! pseudo-random sequence (so gzip cannot shrink the transfer), spread over several layers.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::layer::{Compression, LayerBuilder};
use crate::layout::{Flavor, ImageConfig, ImageSink, Layout};

/// xorshift64*: deterministic bytes, identical on every run and machine.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Writes an OCI layout at `out` (tag `latest`) of `layers` gzip layers holding `mib` MiB of
/// files in total, 1 MiB each. Returns the layout directory.
pub fn build_bench_image(out: &Path, mib: usize, layers: usize) -> Result<PathBuf> {
    let layout = Layout::create(out)?;
    let mut built = Vec::new();
    let per_layer = mib.div_ceil(layers.max(1));
    let mut file = vec![0u8; 1 << 20];
    for l in 0..layers {
        let mut b = LayerBuilder::new();
        b.dir(&format!("data{l}"), 0o755)?;
        for f in 0..per_layer {
            fill((l * 1000 + f) as u64 + 1, &mut file);
            b.file(&format!("data{l}/file{f:03}"), 0o644, &file)?;
        }
        built.push(b.finish(Compression::Gzip)?);
    }
    let config = ImageConfig {
        architecture: "amd64".into(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        cmd: vec!["/bin/true".into()],
        working_dir: "/".into(),
        ..Default::default()
    };
    let desc = layout.put_image(Flavor::Oci, &config, &built)?;
    let mut layout = layout;
    layout.tag(&desc, "latest");
    layout.finish()
}
