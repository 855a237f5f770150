//! Checks that change data and configuration: retention deletes, maintenance, settings.

use crate::database::{Database, Maintenance, TableSize};
use crate::error::ErrorKind;
use crate::refs::{Identifier, TableRef};

use super::fixture::{ScratchTable, ok, refused};

/// A table that does not exist.
fn missing_table() -> TableRef {
    ok(
        "table",
        format!("public.opsbook_no_such_table_{}", fastrand::u32(..)).parse(),
    )
}

/// Retention on the scratch table: counting finds exactly the old rows, twice (the read
/// half changes nothing); a delete within a budget of half of them removes exactly that
/// many, in batches of the requested size, and says it is incomplete; the rest goes in a
/// second delete (complete); a third finds nothing; the new rows all remain. Bad identifiers
/// are refused by the constructors ([`ErrorKind::InvalidInput`]); an unknown table or column
/// is [`ErrorKind::NotFound`] for both count and delete.
///
/// # Panics
/// When a count, a delete or an error kind is wrong.
#[allow(
    clippy::too_many_lines,
    reason = "one table's story: count, delete in two budgets, verify"
)]
pub async fn retention_deletes_exactly_the_old_rows(db: &dyn Database, fx: &ScratchTable) {
    assert!(fx.old_rows > 0, "the fixture's scratch table has old rows");
    let old = fx.retention();
    let all = fx.every_row();
    let total = fx.old_rows + fx.new_rows;
    assert_eq!(
        ok("count_older_than", db.count_older_than(&all).await),
        total,
        "{} holds {total} rows, all in the past",
        fx.table
    );
    for _ in 0..2 {
        assert_eq!(
            ok("count_older_than", db.count_older_than(&old).await),
            fx.old_rows,
            "{} has {} rows older than {:?}",
            fx.table,
            fx.old_rows,
            fx.older_than
        );
    }
    // Several batches, and a budget that stops half-way.
    let batch = u32::try_from((fx.old_rows / 3).max(1)).unwrap_or(u32::MAX);
    let first = fx.old_rows / 2;
    if first > 0 {
        let budgeted = old.clone().with_batch_size(batch).with_max_rows(first);
        let done = ok("delete_older_than", db.delete_older_than(&budgeted).await);
        assert_eq!(done.rows, first, "a budget of {first} rows deletes {first}");
        assert!(!done.complete, "old rows remain after the budget: {done:?}");
        assert!(
            done.batches >= first.div_ceil(u64::from(batch)),
            "{first} rows in batches of {batch}: {done:?}"
        );
        assert_eq!(
            ok("count_older_than", db.count_older_than(&old).await),
            fx.old_rows - first,
            "the budgeted delete removed exactly {first} old rows"
        );
    }
    let rest = fx.old_rows - first;
    let done = ok(
        "delete_older_than",
        db.delete_older_than(&old.clone().with_batch_size(batch))
            .await,
    );
    assert_eq!(done.rows, rest, "the remaining {rest} old rows are deleted");
    assert!(done.complete, "nothing old remains: {done:?}");
    let min_batches = rest.div_ceil(u64::from(batch));
    assert!(
        done.batches >= min_batches && done.batches <= rest / u64::from(batch) + 1,
        "{rest} rows in batches of {batch} take {min_batches} or one more: {done:?}"
    );
    let again = ok("delete_older_than", db.delete_older_than(&old).await);
    assert_eq!(again.rows, 0, "a second delete finds nothing: {again:?}");
    assert_eq!(ok("count_older_than", db.count_older_than(&old).await), 0);
    assert_eq!(
        ok("count_older_than", db.count_older_than(&all).await),
        fx.new_rows,
        "the {} newer rows of {} remain",
        fx.new_rows,
        fx.table
    );

    assert_eq!(
        Identifier::new("").map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
    assert_eq!(
        Identifier::new(&"x".repeat(64)).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
    assert_eq!(
        "a.b.c".parse::<TableRef>().map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
    let mut unknown_table = old.clone();
    unknown_table.table = missing_table();
    let mut unknown_column = old.clone();
    unknown_column.column = ok("column", Identifier::new("opsbook_no_such_column"));
    for (what, r) in [("table", &unknown_table), ("column", &unknown_column)] {
        refused(
            "count_older_than",
            db.count_older_than(r).await,
            ErrorKind::NotFound,
            &format!("count_older_than of an unknown {what}"),
        );
        refused(
            "delete_older_than",
            db.delete_older_than(r).await,
            ErrorKind::NotFound,
            &format!("delete_older_than of an unknown {what}"),
        );
    }
    assert_eq!(
        ok("count_older_than", db.count_older_than(&all).await),
        fx.new_rows,
        "refused calls deleted nothing"
    );
}

/// Maintenance has no capability flag: every backend does it. After the retention check
/// deleted the old rows, [`Database::table_sizes`] shows them as dead rows and the new ones
/// live (within ten seconds: statistics may lag; the caller keeps autovacuum off the table); `VACUUM (ANALYZE)` of the scratch table succeeds with a
/// statement naming the quoted table, and within ten seconds the table shows no dead rows
/// and exactly the new rows live. `ANALYZE` succeeds too; an unknown table is
/// [`ErrorKind::NotFound`].
///
/// # Panics
/// When maintenance fails, leaves the dead rows or accepts an unknown table.
pub async fn maintain_vacuums_the_table(db: &dyn Database, fx: &ScratchTable) {
    let table = &fx.table;
    let (old, new) = (fx.old_rows, fx.new_rows);
    // Every deleted row must be counted before VACUUM runs, or a late count lands after it.
    table_shows(
        db,
        table,
        &format!("{table} never shows the {old} deleted rows as dead and {new} live"),
        &|t| t.dead_rows >= old && t.live_rows == new,
    )
    .await;
    let done = ok(
        "maintain",
        db.maintain(Maintenance::Vacuum { analyze: true }, Some(table.clone()))
            .await,
    );
    assert!(
        done.statement.contains("VACUUM") && done.statement.contains(&table.quoted()),
        "the statement names VACUUM and the quoted table: {done:?}"
    );
    table_shows(
        db,
        table,
        &format!(
            "{table} still has dead rows, or not exactly {new} live ones, after VACUUM (ANALYZE)"
        ),
        &|t| t.dead_rows == 0 && t.live_rows == new,
    )
    .await;
    let analyzed = ok(
        "maintain",
        db.maintain(Maintenance::Analyze, Some(table.clone())).await,
    );
    assert!(
        analyzed.statement.contains("ANALYZE"),
        "ANALYZE ran: {analyzed:?}"
    );
    refused(
        "maintain",
        db.maintain(Maintenance::Analyze, Some(missing_table()))
            .await,
        ErrorKind::NotFound,
        "maintenance of an unknown table",
    );
}

/// Wait up to ten seconds until [`Database::table_sizes`] lists `table` as `seen` wants it.
async fn table_shows(
    db: &dyn Database,
    table: &TableRef,
    what: &str,
    seen: &(dyn Fn(&TableSize) -> bool + Sync),
) {
    super::super::within_ten_seconds(what, move || async move {
        ok("table_sizes", db.table_sizes(10_000).await)
            .iter()
            .find(|t| &t.table == table)
            .is_some_and(seen)
    })
    .await;
}

/// The setting [`settings_change_and_read_back`] changes: reloadable without a restart.
const RELOADABLE: &str = "log_min_duration_statement";

/// When [`crate::database::DatabaseCapabilities::settings`] is claimed: changing
/// `log_min_duration_statement` reports the old and new value and no restart, the new
/// value is read back, and changing it back restores the old value; an unknown setting is
/// refused ([`ErrorKind::InvalidInput`]). When disclaimed, the change is
/// [`ErrorKind::Unsupported`].
///
/// # Panics
/// When the change is not reported, not persisted or not undone.
pub async fn settings_change_and_read_back(db: &dyn Database) {
    if !db.capabilities().settings {
        refused(
            "set_setting",
            db.set_setting(RELOADABLE, "1234").await,
            ErrorKind::Unsupported,
            "settings are disclaimed",
        );
        return;
    }
    let before = ok("setting", db.setting(RELOADABLE).await);
    let value = if before.trim() == "1234" {
        "4321"
    } else {
        "1234"
    };
    let change = ok("set_setting", db.set_setting(RELOADABLE, value).await);
    assert_eq!(
        (
            change.old.as_str(),
            change.new.as_str(),
            change.needs_restart
        ),
        (before.as_str(), value, false),
        "the change reports old and new value: {change:?}"
    );
    assert_eq!(
        ok("setting", db.setting(RELOADABLE).await),
        value,
        "{RELOADABLE} reads back as set"
    );
    let undo = ok("set_setting", db.set_setting(RELOADABLE, &before).await);
    assert_eq!(
        (undo.old.as_str(), undo.new.as_str()),
        (value, before.as_str())
    );
    assert_eq!(
        ok("setting", db.setting(RELOADABLE).await),
        before,
        "{RELOADABLE} is back to its old value"
    );
    refused(
        "set_setting",
        db.set_setting("opsbook_no_such_setting", "1").await,
        ErrorKind::InvalidInput,
        "an unknown setting is refused",
    );
}
