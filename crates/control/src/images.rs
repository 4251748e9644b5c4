//! Images for revisions and task attempts: pulled once per revision or execution, each
//! container's image once, into the node's store.

use image::{ImageRecord, ImageSource, Quiet, RegistryOptions};
use runtime::instance::Node;
use std::collections::HashMap;

/// One record per container, each image pulled once.
pub(crate) async fn pull(
    node: Node,
    images: Vec<String>,
    registry: RegistryOptions,
) -> Result<Vec<ImageRecord>, String> {
    // The image store's pull future is not `Send` (a closure over borrowed layers in its
    // stream), so it runs on a blocking thread of its own, on this runtime's drivers.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(pull_each(&node, images, &registry)))
        .await
        .map_err(|e| format!("pulling images: {e}"))?
}

async fn pull_each(
    node: &Node,
    images: Vec<String>,
    registry: &RegistryOptions,
) -> Result<Vec<ImageRecord>, String> {
    let mut pulled: HashMap<String, ImageRecord> = HashMap::new();
    let mut records = Vec::with_capacity(images.len());
    for image in images {
        if let Some(r) = pulled.get(&image) {
            records.push(r.clone());
            continue;
        }
        let source = ImageSource::parse(&image)
            .map_err(|e| format!("Image '{image}' is not a valid reference: {e}"))?;
        let record = match node.store.pull(&source, registry, &Quiet).await {
            Ok(outcome) => outcome.record,
            Err(e) => {
                // The registry may be gone while the image is in the store: a revision
                // that ran once keeps running from what it pulled.
                let cached = image::pull::record_reference(&source)
                    .ok()
                    .and_then(|key| node.store.get(&key).ok().flatten());
                match cached {
                    Some(r) => {
                        tracing::warn!(%image, "pull failed ({e}); using the stored image");
                        r
                    }
                    None => return Err(format!("Image '{image}' could not be pulled: {e}")),
                }
            }
        };
        pulled.insert(image, record.clone());
        records.push(record);
    }
    Ok(records)
}
