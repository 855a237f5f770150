//! `opsbook journal list | show RUN | postmortem RUN`: read the journal the runs wrote.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use ops_core::Journal as _;
use ops_core::incident::{Incident, Severity};
use ops_core::journal::{JournalEntry, RunQuery};
use ops_core::run::RunId;

use super::JournalCommand;

/// Run a journal subcommand against the SQLite journal at `path` (never created here).
pub(crate) async fn journal(
    path: &Path,
    command: &JournalCommand,
    json: bool,
) -> anyhow::Result<()> {
    if !path.exists() {
        bail!(
            "no journal at {}: runs write it; name another with --journal or OPSBOOK_JOURNAL",
            path.display()
        );
    }
    let journal = ops_db::SqliteJournal::open(path)
        .await
        .with_context(|| format!("cannot open the journal {}", path.display()))?;
    match command {
        JournalCommand::List { limit } => {
            let runs = journal
                .runs(&RunQuery::default().with_limit(*limit))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            println!(
                "| run | runbook | mode | started | result |\n| --- | --- | --- | --- | --- |"
            );
            for r in runs {
                let result = match r.finished {
                    Some((_, true)) => "ok",
                    Some((_, false)) => "failed or unresolved",
                    None => "in progress (or interrupted)",
                };
                println!(
                    "| {} | {} | {} | {} | {result} |",
                    r.run_id, r.runbook, r.mode, r.started_at
                );
            }
        }
        JournalCommand::Show { run } => {
            let entries = entries(&journal, run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            for e in &entries {
                println!("{}", entry_line(e));
            }
        }
        JournalCommand::Postmortem { run, severity } => {
            let entries = entries(&journal, run).await?;
            let mut incident = Incident::from_journal(&entries).context("an empty run")?;
            if let Some(severity) = severity {
                let severity: Severity = severity
                    .parse()
                    .map_err(|e: ops_core::OpsError| anyhow::anyhow!(e.chain()))?;
                let at = incident.started_at();
                incident.set_severity(severity, at);
            }
            let pm = incident.postmortem(&entries);
            if json {
                println!("{}", serde_json::to_string_pretty(&pm)?);
            } else {
                println!("{}", pm.to_markdown());
            }
        }
    }
    Ok(())
}

async fn entries(journal: &ops_db::SqliteJournal, run: &str) -> anyhow::Result<Vec<JournalEntry>> {
    let id: RunId = run.parse().map_err(|e: ops_core::OpsError| {
        anyhow::anyhow!("{run:?} is not a run id: {}", e.chain())
    })?;
    let entries = journal.entries(&id).await?;
    if entries.is_empty() {
        bail!("no run {run} in the journal (see: opsbook journal list)");
    }
    Ok(entries)
}

fn entry_line(e: &JournalEntry) -> String {
    let mut line = format!("{} {} {}", e.at, e.mode, e.event);
    if let Some(step) = &e.step {
        let _ = write!(line, " {step}");
    }
    if !e.detail.is_empty() {
        let _ = write!(line, ": {}", e.detail);
    }
    for c in &e.changes {
        let _ = write!(line, "\n    - {c}");
    }
    line
}
