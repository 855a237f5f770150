//! Image prune with an age filter, and disk usage of images and containers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, PruneImagesOptionsBuilder,
};
use serde::Serialize;

use crate::error::Result;
use crate::platform::ComposePlatform;

/// Options for [`ComposePlatform::prune_images`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let o = ops_compose::PruneImagesOptions::default().older_than(Duration::from_hours(24 * 7));
/// assert!(o.dangling_only);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneImagesOptions {
    /// Only images created longer ago than this (`until` filter).
    pub older_than: Option<Duration>,
    /// Only untagged images (default true); false removes every unused image.
    pub dangling_only: bool,
}

impl Default for PruneImagesOptions {
    fn default() -> Self {
        Self {
            older_than: None,
            dangling_only: true,
        }
    }
}

impl PruneImagesOptions {
    /// Only images older than `age`.
    #[must_use]
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Also remove tagged images no container uses.
    #[must_use]
    pub fn including_unused(mut self) -> Self {
        self.dangling_only = false;
        self
    }
}

/// What an image prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Image ids deleted.
    pub deleted: Vec<String>,
    /// Tags removed.
    pub untagged: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// Disk used by images and containers (`docker system df`, computed from the image and
/// container lists so it reads the same on every API version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DiskUsage {
    /// Images.
    pub images: u64,
    /// Bytes of all images (shared layers counted once where the engine reports it).
    pub images_bytes: u64,
    /// Bytes of images no container uses.
    pub images_reclaimable_bytes: u64,
    /// Containers.
    pub containers: u64,
    /// Bytes written by containers (their writable layers).
    pub containers_bytes: u64,
}

impl ComposePlatform {
    /// Remove unused images (dangling only by default), optionally only those older than an
    /// age. Not part of [`ops_core::Platform`]: callers plan it as a disruptive step.
    ///
    /// # Errors
    /// Engine errors; `Conflict` when a prune is already running.
    pub async fn prune_images(&self, opts: &PruneImagesOptions) -> Result<PruneReport> {
        let docker = self.docker().await?;
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("dangling".to_owned(), vec![opts.dangling_only.to_string()]);
        if let Some(age) = opts.older_than {
            filters.insert("until".to_owned(), vec![format!("{}s", age.as_secs())]);
        }
        let engine_opts = PruneImagesOptionsBuilder::new().filters(&filters).build();
        let resp = self
            .call(
                "prune_images",
                "images",
                docker.prune_images(Some(engine_opts)),
            )
            .await?;
        let mut report = PruneReport::default();
        for item in resp.images_deleted.unwrap_or_default() {
            report.deleted.extend(item.deleted);
            report.untagged.extend(item.untagged);
        }
        report.space_reclaimed = u64::try_from(resp.space_reclaimed.unwrap_or(0)).unwrap_or(0);
        Ok(report)
    }

    /// Disk used by images and containers.
    ///
    /// # Errors
    /// Engine errors.
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let docker = self.docker().await?;
        let images = self
            .call(
                "list_images",
                "images",
                docker.list_images(Some(ListImagesOptionsBuilder::new().all(false).build())),
            )
            .await?;
        let containers = self
            .call(
                "list_containers",
                "containers",
                docker.list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .all(true)
                        .size(true)
                        .build(),
                )),
            )
            .await?;
        let used: HashSet<&str> = containers
            .iter()
            .filter_map(|c| c.image_id.as_deref())
            .collect();
        let size = |s: i64| u64::try_from(s).unwrap_or(0);
        let mut usage = DiskUsage {
            images: images.len() as u64,
            containers: containers.len() as u64,
            ..DiskUsage::default()
        };
        for i in &images {
            let shared = size(i.shared_size);
            usage.images_bytes += size(i.size).saturating_sub(shared);
            if !used.contains(i.id.as_str()) {
                usage.images_reclaimable_bytes += size(i.size).saturating_sub(shared);
            }
        }
        usage.containers_bytes = containers
            .iter()
            .map(|c| size(c.size_rw.unwrap_or(0)))
            .sum();
        Ok(usage)
    }
}
