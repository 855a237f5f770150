//! [`RecordingNotifier`]: keeps every notification it is sent.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::Faults;
use crate::error::{ErrorKind, OpsError};
use crate::notify::{Notification, Notifier};

/// A [`Notifier`] that records what it was sent.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::incident::Severity;
/// use ops_core::notify::{Notification, Notifier};
/// use ops_core::testing::RecordingNotifier;
/// let n = RecordingNotifier::default();
/// n.send(&Notification::new(Severity::High, "api down", "")).await?;
/// assert_eq!(n.sent()[0].title, "api down");
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<Notification>>,
    faults: Faults,
}

impl RecordingNotifier {
    /// Make the next send fail with `kind`.
    #[must_use]
    pub fn fail_next(self, kind: ErrorKind) -> Self {
        self.faults.fail_next("send", kind);
        self
    }

    /// Every notification delivered.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, notification: &Notification) -> Result<(), OpsError> {
        self.faults.call("fake", "send", &notification.title)?;
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notification.clone());
        Ok(())
    }
}
