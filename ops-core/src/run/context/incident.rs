//! The incident side of a [`Run`]: signals classified into the report's severity, status
//! updates, and escalation by elapsed time.

use std::sync::PoisonError;
use std::time::Duration;

use super::Run;
use crate::incident::{
    Classification, Classifier, EscalationLevel, EscalationPolicy, IncidentStatus, Severity,
    SeverityScale, Signals, StatusUpdate, Thresholds, UpdateCadence,
};
use crate::notify::Notification;
use crate::run::{ActionStatus, FindingLevel, Mode, RunOutcome};

/// How the runs of a context judge and announce an incident: the classifier's
/// [`Thresholds`], the [`SeverityScale`] labels are shown on, the [`EscalationPolicy`] and
/// the [`UpdateCadence`] of status updates. Every part defaults to the seeds' values (P0–P3).
///
/// # Examples
/// ```
/// use ops_core::incident::{Severity, SeverityScale};
/// use ops_core::run::{IncidentPolicy, RunContext};
/// let ctx = RunContext::builder()
///     .incident_policy(IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4()))
///     .build();
/// assert_eq!(ctx.incident_policy().scale.label(Severity::Critical), "P1");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct IncidentPolicy {
    /// What the signals are compared with.
    pub thresholds: Thresholds,
    /// How severities are labelled (reports, notifications, post-mortems).
    pub scale: SeverityScale,
    /// Who is notified while a run stays unresolved.
    pub escalation: EscalationPolicy,
    /// When the next status update is due.
    pub cadence: UpdateCadence,
}

impl IncidentPolicy {
    /// Use `thresholds` to classify signals.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::Thresholds;
    /// let mut t = Thresholds::default();
    /// t.error_rate_high = 0.2;
    /// let p = ops_core::run::IncidentPolicy::default().with_thresholds(t);
    /// assert_eq!(p.thresholds.error_rate_high, 0.2);
    /// ```
    #[must_use]
    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Label severities on `scale`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Severity, SeverityScale};
    /// let p = ops_core::run::IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4());
    /// assert_eq!(p.scale.label(Severity::Low), "P4");
    /// ```
    #[must_use]
    pub fn with_scale(mut self, scale: SeverityScale) -> Self {
        self.scale = scale;
        self
    }

    /// Escalate unresolved runs with `policy`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{EscalationLevel, EscalationPolicy};
    /// let ladder = EscalationPolicy::new(vec![EscalationLevel::new(1, Duration::from_mins(5), "lead")]);
    /// let p = ops_core::run::IncidentPolicy::default().with_escalation(ladder);
    /// assert_eq!(p.escalation.levels.len(), 1);
    /// ```
    #[must_use]
    pub fn with_escalation(mut self, policy: EscalationPolicy) -> Self {
        self.escalation = policy;
        self
    }

    /// Announce the next update after `cadence`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::UpdateCadence;
    /// let mut c = UpdateCadence::default();
    /// c.critical = Duration::from_mins(10);
    /// let p = ops_core::run::IncidentPolicy::default().with_cadence(c);
    /// assert_eq!(p.cadence.critical, Duration::from_mins(10));
    /// ```
    #[must_use]
    pub fn with_cadence(mut self, cadence: UpdateCadence) -> Self {
        self.cadence = cadence;
        self
    }

    /// The classifier of these thresholds, labelling on this scale.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Severity, SeverityScale, Signals};
    /// let p = ops_core::run::IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4());
    /// let c = p.classifier().classify(&Signals::default().with_service_down(true));
    /// assert_eq!((c.severity, c.reasons[0].as_str()), (Severity::Critical, "service down (P1)"));
    /// ```
    pub fn classifier(&self) -> Classifier {
        Classifier::new(self.thresholds.clone()).with_scale(self.scale.clone())
    }
}

/// What a run knows about its incident.
#[derive(Debug, Default)]
pub(super) struct IncidentState {
    /// Everything observed so far.
    signals: Signals,
    /// A severity a seed mandates regardless of the signals ([`Run::set_severity`]).
    mandated: Option<Severity>,
    /// Set by the first notification: the incident is open and gets status updates.
    opened: Option<Opened>,
    /// The last status announced.
    announced: Option<IncidentStatus>,
    /// Escalation levels already notified.
    escalated: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Opened {
    title: String,
    dedup_key: String,
    incident_id: String,
}

impl Run<'_> {
    fn with_incident<R>(&self, f: impl FnOnce(&mut IncidentState) -> R) -> R {
        // Every mutation is a single assignment or push: a poisoned lock holds nothing torn.
        let mut guard = self.incident.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Record what the diagnosis observed and re-classify: the report's severity becomes the
    /// context's [`Classifier`] verdict on every signal of the run (with its reasons and its
    /// label on the context's [`SeverityScale`]). Returns that verdict.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use ops_core::incident::{Severity, SeverityScale, Signals};
    /// use ops_core::run::{IncidentPolicy, RunContext};
    /// let ctx = RunContext::builder()
    ///     .incident_policy(IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4()))
    ///     .build();
    /// let run = ctx.begin("example", "api").await;
    /// run.observe(Signals::default().with_error_rate(0.12));
    /// let report = run.snapshot();
    /// assert_eq!(report.severity, Some(Severity::High));
    /// assert_eq!(report.severity_label.as_deref(), Some("P2"));
    /// assert_eq!(report.severity_reasons, ["error rate 12.0% >= 10% (P2)"]);
    /// # });
    /// ```
    pub fn observe(&self, signals: Signals) -> Classification {
        let (all, mandated) = self.with_incident(|s| {
            s.signals.absorb(signals);
            (s.signals.clone(), s.mandated)
        });
        let classification = self.ctx.incident.classifier().classify(&all);
        self.apply_severity(&classification, mandated);
        classification
    }

    /// Everything observed so far ([`Run::observe`]).
    pub fn signals(&self) -> Signals {
        self.with_incident(|s| s.signals.clone())
    }

    /// Fix the severity where a seed mandates one whatever the signals say (e.g. a security
    /// lockdown is P0). The report's severity is the higher of this and the classification.
    /// Prefer [`Run::observe`]: the severity should follow the evidence.
    pub fn set_severity(&self, severity: Severity) {
        let all = self.with_incident(|s| {
            s.mandated = Some(s.mandated.map_or(severity, |m| m.max(severity)));
            s.signals.clone()
        });
        let classification = self.ctx.incident.classifier().classify(&all);
        self.apply_severity(&classification, Some(severity));
    }

    /// The severity so far (`None` while no rule fired and none was mandated).
    pub fn severity(&self) -> Option<Severity> {
        self.with_report(|r| r.severity)
    }

    fn apply_severity(&self, c: &Classification, mandated: Option<Severity>) {
        let classified = (!c.reasons.is_empty()).then_some(c.severity);
        let severity = classified.max(mandated);
        let scale = &self.ctx.incident.scale;
        let mut reasons = c.reasons.clone();
        if let Some(m) = mandated
            && classified.is_none_or(|c| m > c)
        {
            reasons.insert(0, format!("set by the runbook ({})", scale.label(m)));
        }
        self.with_report(|r| {
            r.severity = severity;
            r.severity_label = severity.map(|s| scale.label(s).to_owned());
            r.severity_reasons = reasons;
        });
    }

    /// Where the incident stands, from the run's own record: Monitoring once a change was
    /// made (a disruptive step other than a notification succeeded), Identified once the
    /// diagnosis found something (a warning or critical finding), else Investigating.
    pub fn incident_status(&self) -> IncidentStatus {
        self.with_report(|r| {
            if r.actions
                .iter()
                .any(|a| a.status == ActionStatus::Taken && a.step != NOTIFY)
            {
                IncidentStatus::Monitoring
            } else if r.findings.iter().any(|f| f.level != FindingLevel::Info) {
                IncidentStatus::Identified
            } else {
                IncidentStatus::Investigating
            }
        })
    }

    /// Tell people, as a status update: the first notification opens the run's incident
    /// (its title and dedup key are the incident's from then on); each is sent with the run's
    /// status ([`Run::incident_status`]), severity (labelled on the context's scale), impact
    /// (the critical findings), the actions so far and the next update time from the
    /// context's [`UpdateCadence`], followed by `notification`'s body. Once open, the run
    /// sends an update by itself whenever its status changes (checked before each step), when
    /// an escalation level is due, and the closing update when it finishes.
    ///
    /// In execute mode the approver decides (step `notify`, target the notifier's name); a
    /// failure to send is a warning finding, never fatal. A dry run records a planned action.
    pub async fn notify(&self, notification: Notification) {
        let status = self.incident_status();
        let n = self.as_status_update(notification, status, None);
        self.with_incident(|s| s.announced = Some(status));
        self.deliver(n).await;
    }

    /// Shape `n` as the status update `status` of this run's incident (opening it if needed).
    fn as_status_update(
        &self,
        n: Notification,
        status: IncidentStatus,
        impact: Option<String>,
    ) -> Notification {
        let opened = self.with_incident(|s| {
            s.opened
                .get_or_insert_with(|| Opened {
                    title: n.title.clone(),
                    dedup_key: n.dedup_key.clone(),
                    incident_id: n
                        .incident_id
                        .clone()
                        .unwrap_or_else(|| self.id().to_string()),
                })
                .clone()
        });
        let report = self.snapshot();
        let severity = report.severity.unwrap_or(n.severity);
        let policy = &self.ctx.incident;
        let impact = impact.unwrap_or_else(|| {
            let critical: Vec<&str> = report
                .findings
                .iter()
                .filter(|f| f.level == FindingLevel::Critical)
                .map(|f| f.title.as_str())
                .collect();
            if critical.is_empty() {
                format!("{}: under investigation", report.target)
            } else {
                format!("{}: {}", report.target, critical.join("; "))
            }
        });
        let mut update = StatusUpdate::new(
            status,
            severity,
            n.title.clone(),
            impact,
            self.ctx.clock.now(),
        )
        .with_next_update(policy.cadence.for_severity(severity));
        for a in report.actions.iter().filter(|a| a.step != NOTIFY) {
            update = update.with_action(format!("{} ({})", a.description, a.status.label()));
        }
        let mut body = update.to_markdown_with(&policy.scale);
        if !n.body.trim().is_empty() {
            body.push('\n');
            body.push_str(&n.body);
        }
        let mut out = Notification::new(severity, n.title, body)
            .with_incident(opened.incident_id)
            .with_dedup_key(opened.dedup_key)
            .with_status(status)
            .with_severity_label(policy.scale.label(severity));
        out.fields = n.fields;
        out.links = n.links;
        if let Some(at) = update.next_update_at() {
            out = out.with_field("next update", at.to_string());
        }
        out
    }

    /// At a step boundary of an execute run with an open incident: announce a changed status
    /// and notify every escalation level that has become due.
    pub(super) async fn checkpoint(&self) {
        if self.ctx.mode == Mode::DryRun {
            return;
        }
        let status = self.incident_status();
        let changed = self.with_incident(|s| {
            if s.opened.is_none() || s.announced == Some(status) {
                return None;
            }
            s.announced = Some(status);
            s.opened.clone()
        });
        if let Some(opened) = changed {
            let n = Notification::new(Severity::Low, opened.title, "");
            let n = self.as_status_update(n, status, None);
            self.deliver(n).await;
        }
        self.escalate().await;
    }

    /// Notify the escalation level due for the run's severity after the time it has run
    /// (each level once, never a lower one after a higher); nothing without a severity.
    async fn escalate(&self) {
        let Some(severity) = self.severity() else {
            return;
        };
        let started = self.with_report(|r| r.started_at);
        let elapsed = Duration::try_from(self.ctx.clock.now().duration_since(started))
            .unwrap_or(Duration::ZERO);
        // The highest level due, once: a level passed over while no step ran is not paged
        // after a higher one was.
        let policy = &self.ctx.incident.escalation;
        let due: Option<EscalationLevel> = self.with_incident(|s| {
            let level = policy.due(elapsed, severity)?;
            if s.escalated.iter().any(|l| *l >= level.level) {
                return None;
            }
            s.escalated.push(level.level);
            Some(level.clone())
        });
        let Some(level) = due else {
            return;
        };
        // An escalation opens the incident when nothing did yet, under the run's own title.
        let fallback = self.with_report(|r| format!("{} on {}", r.runbook, r.target));
        let run_id = self.id().to_string();
        let title = self.with_incident(|s| {
            s.opened
                .get_or_insert_with(|| Opened {
                    title: fallback.clone(),
                    dedup_key: fallback,
                    incident_id: run_id,
                })
                .title
                .clone()
        });
        let n = Notification::new(
            severity,
            format!("escalation to {}: {title}", level.contact),
            format!(
                "Unresolved after {}: {level}.",
                crate::incident::human_duration(elapsed)
            ),
        )
        .with_field("escalate to", level.contact.clone())
        .with_field("escalation level", level.level.to_string());
        let status = self.incident_status();
        let n = self.as_status_update(n, status, None);
        let key = format!("{}:escalation:{}", n.dedup_key, level.level);
        self.with_incident(|s| s.announced = Some(status));
        self.deliver(n.with_dedup_key(key)).await;
    }

    /// The closing update of an open incident: Resolved when the run ended healthy or
    /// recovered — except a security incident, which a run can contain but only people can
    /// declare over (the seeds lift a lockdown "after verification"): it stays Monitoring.
    /// Otherwise escalation is checked once more and the incident stays Investigating (a
    /// human takes over). A dry run records it as planned.
    pub(super) async fn close_incident(&self, outcome: RunOutcome) {
        let security = self.with_incident(|s| s.signals.security_incident);
        let status = match outcome {
            RunOutcome::Healthy | RunOutcome::Recovered if security => IncidentStatus::Monitoring,
            RunOutcome::Healthy | RunOutcome::Recovered => IncidentStatus::Resolved,
            RunOutcome::Unresolved | RunOutcome::Failed => {
                if self.ctx.mode == Mode::Execute {
                    self.escalate().await;
                }
                IncidentStatus::Investigating
            }
            // A dry run plans the update it would send.
            RunOutcome::Planned | RunOutcome::InProgress => self.incident_status(),
        };
        let Some(opened) = self.with_incident(|s| {
            s.announced = Some(status);
            s.opened.clone()
        }) else {
            return;
        };
        let summary = self.with_report(|r| r.summary.clone());
        let impact = (!summary.trim().is_empty()).then_some(summary);
        let body = format!("Run ended: {}.", outcome.label());
        let n = self.as_status_update(
            Notification::new(Severity::Low, opened.title, body),
            status,
            impact,
        );
        self.deliver(n).await;
    }
}

/// The step name of notifications.
pub(super) const NOTIFY: &str = "notify";
