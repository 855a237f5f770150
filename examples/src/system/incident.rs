//! `[incident]` of a system file: the severity scale (the seeds' P0–P3 or P1–P4), the
//! status-update cadence per severity and the escalation ladder, checked into the run
//! context's [`IncidentPolicy`]. Severity labels elsewhere in the file (a notifier's
//! `severities`) are read on the same scale, so `P4` is a severity exactly when the file
//! says `scale = "p1-p4"`.

use ops_core::incident::{EscalationLevel, EscalationPolicy, Severity, SeverityScale};
use ops_core::run::IncidentPolicy;

use super::diagnostics::Collector;
use super::raw::{RawEscalationLevel, RawIncident, Text};
use super::validate::duration;

/// The incident policy the file describes, on top of `policy` (which holds the thresholds
/// read from `[thresholds]`). Every error is reported with its place; what is wrong keeps
/// the default.
pub(crate) fn incident_policy(
    c: &mut Collector<'_>,
    raw: &RawIncident,
    mut policy: IncidentPolicy,
) -> IncidentPolicy {
    policy.scale = scale(c, raw.scale.as_ref());
    if let Some(updates) = &raw.updates {
        for (label, value) in updates.get_ref() {
            let key = format!("incident.updates.{label}");
            let Some(severity) = labelled(c, &policy.scale, label, value, &key) else {
                continue;
            };
            if let Some(d) = duration(c, Some(value), &key) {
                let slot = match severity {
                    Severity::Critical => &mut policy.cadence.critical,
                    Severity::High => &mut policy.cadence.high,
                    Severity::Medium => &mut policy.cadence.medium,
                    Severity::Low => &mut policy.cadence.low,
                };
                *slot = d;
            }
        }
    }
    if let Some(levels) = &raw.escalation {
        policy.escalation = escalation(c, &policy.scale, levels);
    }
    policy
}

/// Reads severity labels (a notifier's `severities`) on `scale`.
pub(crate) fn severities(
    c: &mut Collector<'_>,
    scale: &SeverityScale,
    labels: &[Text],
    key: &str,
) -> Vec<Severity> {
    labels
        .iter()
        .filter_map(|t| labelled(c, scale, t.get_ref(), t, key))
        .collect()
}

fn scale(c: &mut Collector<'_>, raw: Option<&Text>) -> SeverityScale {
    match raw.map(|t| (t, t.get_ref().trim().to_ascii_lowercase())) {
        None => SeverityScale::default(),
        Some((_, name)) if name == "p0-p3" => SeverityScale::default(),
        Some((_, name)) if name == "p1-p4" => SeverityScale::p1_to_p4(),
        Some((t, _)) => {
            c.at(
                t.span(),
                "incident.scale",
                format!(
                    "{:?} is not a severity scale: write \"p0-p3\" or \"p1-p4\"",
                    t.get_ref()
                ),
            );
            SeverityScale::default()
        }
    }
}

/// `label` as a severity of `scale`, or an error at `at` naming the scale's labels.
fn labelled(
    c: &mut Collector<'_>,
    scale: &SeverityScale,
    label: &str,
    at: &Text,
    key: &str,
) -> Option<Severity> {
    let found = scale.parse(label.trim()).ok();
    if found.is_none() {
        let known: Vec<&str> = Severity::ALL.iter().map(|s| scale.label(*s)).collect();
        c.at(
            at.span(),
            key,
            format!(
                "{label:?} is not a severity on this scale: {} (see incident.scale)",
                known.join(", ")
            ),
        );
    }
    found
}

/// The ladder in file order, level 1 first. Each level applies to the severities it names
/// (every one when it names none); a severity no level applies to is never escalated.
fn escalation(
    c: &mut Collector<'_>,
    scale: &SeverityScale,
    raw: &[toml::Spanned<RawEscalationLevel>],
) -> EscalationPolicy {
    let mut ladder: Vec<(EscalationLevel, Vec<Severity>)> = Vec::new();
    for (i, level) in raw.iter().enumerate() {
        let key = "incident.escalation";
        let l = level.get_ref();
        let after = duration(c, Some(&l.after), &format!("{key}.after"));
        let contact = l.contact.get_ref().trim();
        if contact.is_empty() {
            c.at(
                l.contact.span(),
                format!("{key}.contact"),
                "say who is notified",
            );
        }
        let only = severities(c, scale, &l.severities, &format!("{key}.severities"));
        let Some(after) = after else { continue };
        if ladder.last().is_some_and(|(p, _)| after <= p.after) {
            c.at(
                l.after.span(),
                format!("{key}.after"),
                "levels fall due in the order they are written: each `after` must be later than the one before",
            );
        }
        let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
        ladder.push((EscalationLevel::new(number, after, contact), only));
    }
    let applying = |to: &dyn Fn(&[Severity]) -> bool| -> Vec<EscalationLevel> {
        ladder
            .iter()
            .filter(|(_, only)| to(only))
            .map(|(level, _)| level.clone())
            .collect()
    };
    // Levels that name no severity are the common ladder; a severity gets its own only where
    // some level leaves it out or names it alone.
    let common = applying(&|only| only.is_empty());
    Severity::ALL
        .into_iter()
        .fold(EscalationPolicy::new(common.clone()), |policy, severity| {
            let levels = applying(&|only| only.is_empty() || only.contains(&severity));
            if levels == common {
                policy
            } else {
                policy.with_override(severity, levels)
            }
        })
}
