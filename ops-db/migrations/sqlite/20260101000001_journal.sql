-- The opsbook journal: append-only, one row per entry, in append order.
CREATE TABLE IF NOT EXISTS opsbook_journal (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL,
    runbook TEXT    NOT NULL,
    event   TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL,
    entry   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS opsbook_journal_run ON opsbook_journal (run_id, seq);
CREATE INDEX IF NOT EXISTS opsbook_journal_started ON opsbook_journal (event, at_ns);
