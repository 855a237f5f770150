//! [`ConsoleNotifier`]: notifications as readable text on a terminal (or any writer).

use std::fmt;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ops_core::notify::Notification;
use ops_core::{Notifier, OpsError};

use crate::error::Error;

/// Writes each notification as a few lines of text: severity, status, title, body, fields
/// and links. Default writer: standard output.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use ops_core::{Notifier, incident::Severity, notify::Notification};
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let console = ops_notify::ConsoleNotifier::with_buffer(Arc::clone(&out));
/// console.send(&Notification::new(Severity::High, "api slow", "p95 3.2s")).await?;
/// let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
/// assert!(text.starts_with("[P1] Investigating: api slow"));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct ConsoleNotifier {
    out: Arc<Mutex<dyn Write + Send>>,
}

impl fmt::Debug for ConsoleNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleNotifier").finish_non_exhaustive()
    }
}

impl Default for ConsoleNotifier {
    fn default() -> Self {
        Self::stdout()
    }
}

impl ConsoleNotifier {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self {
            out: Arc::new(Mutex::new(std::io::stdout())),
        }
    }

    /// Writes to `writer`.
    pub fn with_writer(writer: impl Write + Send + 'static) -> Self {
        Self {
            out: Arc::new(Mutex::new(writer)),
        }
    }

    /// Appends to a shared buffer (tests, reports).
    pub fn with_buffer(buffer: Arc<Mutex<Vec<u8>>>) -> Self {
        Self { out: buffer }
    }

    /// The text written for `n`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::{incident::Severity, notify::Notification};
    /// let text = ops_notify::ConsoleNotifier::render(
    ///     &Notification::new(Severity::Low, "disk 81%", "").with_field("host", "db-1"));
    /// assert!(text.contains("  host: db-1"));
    /// ```
    pub fn render(n: &Notification) -> String {
        let state = if n.resolved {
            "Resolved".to_owned()
        } else {
            n.status.to_string()
        };
        let mut s = format!("[{}] {state}: {}", n.severity_label, n.title);
        if let Some(id) = &n.incident_id {
            let _ = write!(s, " ({id})");
        }
        s.push('\n');
        for line in n.body.lines() {
            let _ = writeln!(s, "  {line}");
        }
        for (k, v) in &n.fields {
            let _ = writeln!(s, "  {k}: {v}");
        }
        for (title, url) in &n.links {
            let _ = writeln!(s, "  -> {title}: {url}");
        }
        s
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Notifier for ConsoleNotifier {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, n: &Notification) -> Result<(), OpsError> {
        let text = Self::render(n);
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| OpsError::from(Error::Write(e)))
    }
}
