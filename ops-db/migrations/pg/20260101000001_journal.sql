-- The opsbook journal: append-only, one row per entry, in append order.
CREATE SCHEMA IF NOT EXISTS opsbook;
CREATE TABLE IF NOT EXISTS opsbook.journal (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  TEXT   NOT NULL,
    runbook TEXT   NOT NULL,
    event   TEXT   NOT NULL,
    at_ns   BIGINT NOT NULL,
    entry   TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_run ON opsbook.journal (run_id, seq);
CREATE INDEX IF NOT EXISTS journal_started ON opsbook.journal (event, at_ns);
