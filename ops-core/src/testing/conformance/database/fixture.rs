//! [`DatabaseFixture`]: what the caller arranged on the server before [`super::run_all`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::database::{Database, RowRetention};
use crate::error::OpsError;
use crate::refs::{Identifier, TableRef};

/// A scratch table the suite may delete from: `old_rows` rows whose time `column` is older than
/// `older_than`, and `new_rows` rows newer than that (but in the past).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::testing::conformance::database::ScratchTable;
/// let t = ScratchTable::new("public.events".parse()?, "created_at".parse()?, Duration::from_secs(30 * 86_400), 25, 7);
/// assert_eq!(t.old_rows + t.new_rows, 32);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScratchTable {
    /// The table, schema-qualified as [`Database::table_sizes`] reports it.
    pub table: TableRef,
    /// Its time column.
    pub column: Identifier,
    /// The cutoff age between the old and the new rows.
    pub older_than: Duration,
    /// Rows older than the cutoff (at least 1).
    pub old_rows: u64,
    /// Rows newer than the cutoff.
    pub new_rows: u64,
}

impl ScratchTable {
    /// `table` with `old_rows` rows older than `older_than` in `column` and `new_rows` newer ones.
    pub fn new(
        table: TableRef,
        column: Identifier,
        older_than: Duration,
        old_rows: u64,
        new_rows: u64,
    ) -> Self {
        Self {
            table,
            column,
            older_than,
            old_rows,
            new_rows,
        }
    }

    /// The retention that selects the old rows.
    pub(super) fn retention(&self) -> RowRetention {
        RowRetention::new(self.table.clone(), self.column.clone(), self.older_than)
    }

    /// The retention that selects every row (all are in the past).
    pub(super) fn every_row(&self) -> RowRetention {
        RowRetention::new(self.table.clone(), self.column.clone(), Duration::ZERO)
    }
}

/// A statement the caller ran before the suite, for [`Database::slow_queries`]: `marker` is
/// text its normalised form keeps (a table name), `literals` are the constants it contained,
/// which no listed statement may show.
///
/// # Examples
/// ```
/// use ops_core::testing::conformance::database::KnownStatement;
/// let s = KnownStatement::new("opsbook_conformance_rows", ["opsbook-literal-7731"]);
/// assert_eq!(s.literals.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KnownStatement {
    /// Text the normalised statement contains.
    pub marker: String,
    /// Constants of the statement as run.
    pub literals: Vec<String>,
}

impl KnownStatement {
    /// A statement whose normalised text contains `marker` and that ran with `literals`.
    pub fn new(
        marker: impl Into<String>,
        literals: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            marker: marker.into(),
            literals: literals.into_iter().map(Into::into).collect(),
        }
    }
}

/// What the caller arranged before [`super::run_all`]: an idle session (which the suite
/// terminates), and optionally a session running a long statement (which it cancels), a
/// scratch table with old and new rows (which it deletes from and maintains), a directory
/// for backups of a database, a database name restores may overwrite (with a handle
/// connected to it, to count the restored rows) and a statement the caller ran for the
/// slow-query check. What is not arranged is not exercised.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::testing::conformance::database::{DatabaseFixture, KnownStatement, ScratchTable};
/// let day = Duration::from_secs(86_400);
/// let fx = DatabaseFixture::new("opsbook-conformance-idle")
///     .with_busy_session("opsbook-conformance-busy")
///     .with_scratch_table(ScratchTable::new("public.events".parse()?, "created_at".parse()?, 30 * day, 25, 7))
///     .with_backups("app".parse()?, "/tmp/backups")
///     .with_restore_into("app_restored".parse()?, None)
///     .with_known_statement(KnownStatement::new("events", ["secret-literal"]));
/// assert_eq!(fx.idle_application, "opsbook-conformance-idle");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseFixture {
    /// `application_name` of the one idle session the caller keeps open (the suite ends it).
    pub idle_application: String,
    /// `application_name` of the one session running a long statement (the suite cancels the
    /// statement; the caller keeps the session open afterwards).
    pub busy_application: Option<String>,
    /// The scratch table.
    pub scratch: Option<ScratchTable>,
    /// The database to back up (the one holding the scratch table) and the existing directory
    /// for its dumps.
    pub backups: Option<(Identifier, PathBuf)>,
    /// A database the suite may overwrite by restoring into it; `None`: restore is not
    /// exercised.
    pub restore_into: Option<Identifier>,
    /// A handle connected to [`DatabaseFixture::restore_into`], to count the scratch table's
    /// rows after the restore; without it only the [`crate::database::RestoreOutcome`] is checked.
    pub restored: Option<Arc<dyn Database>>,
    /// A statement the caller ran, for the slow-query check.
    pub known_statement: Option<KnownStatement>,
}

impl DatabaseFixture {
    /// Only the idle session named `idle_application`.
    pub fn new(idle_application: impl Into<String>) -> Self {
        Self {
            idle_application: idle_application.into(),
            busy_application: None,
            scratch: None,
            backups: None,
            restore_into: None,
            restored: None,
            known_statement: None,
        }
    }

    /// The session running a long statement, by `application_name`.
    #[must_use]
    pub fn with_busy_session(mut self, application: impl Into<String>) -> Self {
        self.busy_application = Some(application.into());
        self
    }

    /// The scratch table.
    #[must_use]
    pub fn with_scratch_table(mut self, table: ScratchTable) -> Self {
        self.scratch = Some(table);
        self
    }

    /// Back up `database` into `dir` (an existing, writable directory).
    #[must_use]
    pub fn with_backups(mut self, database: Identifier, dir: impl Into<PathBuf>) -> Self {
        self.backups = Some((database, dir.into()));
        self
    }

    /// Restore into `database` (overwritten), read back through `restored` when given.
    #[must_use]
    pub fn with_restore_into(
        mut self,
        database: Identifier,
        restored: Option<Arc<dyn Database>>,
    ) -> Self {
        self.restore_into = Some(database);
        self.restored = restored;
        self
    }

    /// The statement the caller ran for the slow-query check.
    #[must_use]
    pub fn with_known_statement(mut self, statement: KnownStatement) -> Self {
        self.known_statement = Some(statement);
        self
    }
}

/// The value, or a panic naming the call and the error chain.
#[track_caller]
pub(super) fn ok<T>(call: &str, r: Result<T, OpsError>) -> T {
    r.unwrap_or_else(|e| panic!("{call} failed: {}", e.chain()))
}

/// Assert `r` failed with `kind`; `why` says what the refusal means.
#[track_caller]
pub(super) fn refused<T: std::fmt::Debug>(
    call: &str,
    r: Result<T, OpsError>,
    kind: crate::ErrorKind,
    why: &str,
) {
    match r {
        Ok(v) => panic!("{call}: {why}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{call}: {why}: {}", e.chain()),
    }
}
