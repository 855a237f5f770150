//! Classify an incident's [`Severity`] from observed [`Signals`] against configurable
//! [`Thresholds`], with a reason in words for every rule that fired.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Severity, SeverityScale};
use crate::error::OpsError;

/// What was observed about an incident, as far as it is known.
///
/// Every signal is optional (`false` or `None` means "not observed"); build with
/// [`Signals::default`] and the `with_*` setters.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::Signals;
/// let s = Signals::default()
///     .with_error_rate(0.12)
///     .with_p95_latency(Duration::from_millis(2500))
///     .with_degraded_dependency("payments provider");
/// assert_eq!(s.error_rate, Some(0.12));
/// assert!(!s.service_down);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each flag is an independent observation, not a state machine"
)]
pub struct Signals {
    /// The service does not answer at all (health check fails, `up == 0`).
    pub service_down: bool,
    /// Share of requests failing with 5xx, as a fraction: `0.12` is 12 %.
    pub error_rate: Option<f64>,
    /// 95th percentile response time.
    #[serde(with = "crate::serde_util::opt_duration_ms", rename = "p95_latency_ms")]
    pub p95_latency: Option<Duration>,
    /// Share of users affected, in percent: `25.0` is a quarter of the users.
    pub users_affected_pct: Option<f64>,
    /// Data loss or corruption is happening or likely.
    pub data_at_risk: bool,
    /// A security breach is suspected or confirmed.
    pub security_incident: bool,
    /// A critical feature (payments, login, the main workflow) is unavailable.
    pub critical_feature_down: bool,
    /// An external dependency (provider API, CDN) is degraded; names it.
    pub degraded_dependency: Option<String>,
}

impl Signals {
    /// Whether the service is down.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::incident::Signals::default().with_service_down(true).service_down);
    /// ```
    #[must_use]
    pub fn with_service_down(mut self, down: bool) -> Self {
        self.service_down = down;
        self
    }

    /// The 5xx error rate as a fraction (`0.05` is 5 %).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::incident::Signals::default().with_error_rate(0.05).error_rate, Some(0.05));
    /// ```
    #[must_use]
    pub fn with_error_rate(mut self, fraction: f64) -> Self {
        self.error_rate = Some(fraction);
        self
    }

    /// The 95th percentile latency.
    ///
    /// # Examples
    /// ```
    /// let s = ops_core::incident::Signals::default().with_p95_latency(std::time::Duration::from_secs(3));
    /// assert_eq!(s.p95_latency, Some(std::time::Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub fn with_p95_latency(mut self, p95: Duration) -> Self {
        self.p95_latency = Some(p95);
        self
    }

    /// Whether data is at risk.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::incident::Signals::default().with_data_at_risk(true).data_at_risk);
    /// ```
    #[must_use]
    pub fn with_data_at_risk(mut self, at_risk: bool) -> Self {
        self.data_at_risk = at_risk;
        self
    }

    /// Whether this is a security incident.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::incident::Signals::default().with_security_incident(true).security_incident);
    /// ```
    #[must_use]
    pub fn with_security_incident(mut self, security: bool) -> Self {
        self.security_incident = security;
        self
    }

    /// Whether a critical feature is unavailable.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::incident::Signals::default().with_critical_feature_down(true).critical_feature_down);
    /// ```
    #[must_use]
    pub fn with_critical_feature_down(mut self, down: bool) -> Self {
        self.critical_feature_down = down;
        self
    }

    /// Name the external dependency that is degraded.
    ///
    /// # Examples
    /// ```
    /// let s = ops_core::incident::Signals::default().with_degraded_dependency("kiro.ai");
    /// assert_eq!(s.degraded_dependency.as_deref(), Some("kiro.ai"));
    /// ```
    #[must_use]
    pub fn with_degraded_dependency(mut self, dependency: impl Into<String>) -> Self {
        self.degraded_dependency = Some(dependency.into());
        self
    }
}

impl Signals {
    /// Add what `other` observed: a flag once set stays set, a measurement keeps its worst
    /// value (`NaN` never replaces a number), a named dependency keeps the first name.
    pub(crate) fn absorb(&mut self, other: Signals) {
        fn worst<T: PartialOrd>(a: &mut Option<T>, b: Option<T>) {
            if let Some(b) = b
                && a.as_ref().is_none_or(|a| b > *a)
            {
                *a = Some(b);
            }
        }
        self.service_down |= other.service_down;
        self.data_at_risk |= other.data_at_risk;
        self.security_incident |= other.security_incident;
        self.critical_feature_down |= other.critical_feature_down;
        worst(&mut self.error_rate, other.error_rate);
        worst(&mut self.p95_latency, other.p95_latency);
        worst(&mut self.users_affected_pct, other.users_affected_pct);
        if self.degraded_dependency.is_none() {
            self.degraded_dependency = other.degraded_dependency;
        }
    }
}

/// The numbers the [`Classifier`] compares [`Signals`] against.
///
/// A value *at or above* a threshold fires its rule (the seeds write `>`; at exactly the
/// threshold we would rather page). Only the most severe tier of each signal is reported.
///
/// The seed runbooks disagree, so the defaults are a ladder taken from all of them:
///
/// | signal | P1 (`High`) | P2 (`Medium`) | P3 (`Low`) |
/// |---|---|---|---|
/// | error rate | 10 % | 5 % | 1 % |
/// | p95 latency | 5 s | 3 s | 2 s |
/// | users affected | 50 % | 10 % | — |
///
/// and 100 % of users affected is P0 (`Critical`). Each field documents its sources.
/// Service down, data at risk and a security incident are always P0 (all seeds agree).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::Thresholds;
/// let t = Thresholds::default();
/// assert_eq!(t.error_rate_high, 0.10);
/// assert_eq!(t.p95_low, Duration::from_secs(2));
/// t.validate()?;
///
/// // Or from configuration; missing keys keep their defaults.
/// let t: Thresholds = serde_json::from_str(r#"{ "error_rate_high": 0.2, "p95_high_ms": 10000 }"#).unwrap();
/// assert_eq!(t.p95_high, Duration::from_secs(10));
/// assert_eq!(t.error_rate_medium, 0.05);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Thresholds {
    /// Error rate (fraction) that makes it P1. Default `0.10`: the incident-response seed's P1
    /// example "API error rate > 10%" and its critical (page immediately) alert "> 10%".
    pub error_rate_high: f64,
    /// Error rate (fraction) that makes it P2. Default `0.05`: the incident-response seed's
    /// warning alert "> 5%" (its P2 example is "elevated error rate < 5%"); the Kubernetes seed
    /// pages P1 and the troubleshooting seed alerts critical at the same 5 %.
    pub error_rate_medium: f64,
    /// Error rate (fraction) that makes it P3. Default `0.01`: the troubleshooting seed's key
    /// metric "error rate > 1% → investigate logs" (the compose seed alerts P2 of P1–P4 at 1 %).
    pub error_rate_low: f64,
    /// p95 latency that makes it P1. Default 5 s: the compose seed's "p95 > 5s" on its P1–P4
    /// scale is P2, i.e. the second level (`High`); the incident-response seed warns at 5 s and
    /// gives "response time > 10 seconds" as a P1 example.
    #[serde(with = "crate::serde_util::duration_ms", rename = "p95_high_ms")]
    pub p95_high: Duration,
    /// p95 latency that makes it P2. Default 3 s: the troubleshooting seed's "response time
    /// (P95) > 3s → scale up" and its warning alert "> 3s for 5 minutes".
    #[serde(with = "crate::serde_util::duration_ms", rename = "p95_medium_ms")]
    pub p95_medium: Duration,
    /// p95 latency that makes it P3. Default 2 s: the operations seed's `HighLatency` symptom
    /// "P95 latency > 2 seconds" and the incident-response seed's "API latency > 2 seconds"
    /// (the Kubernetes seed pages P1 at 2 s).
    #[serde(with = "crate::serde_util::duration_ms", rename = "p95_low_ms")]
    pub p95_low: Duration,
    /// Percent of users affected that makes it P0. Default `100.0`: every user affected is the
    /// incident-response seed's P0 "complete service outage".
    pub users_affected_critical_pct: f64,
    /// Percent of users affected that makes it P1. Default `50.0`. The seeds ask "what
    /// percentage of users are affected?" without numbers; half the users is opsbook's reading
    /// of the default scale's P1 "major degradation affecting many users".
    pub users_affected_high_pct: f64,
    /// Percent of users affected that makes it P2. Default `10.0`, opsbook's choice (the seeds
    /// give no number).
    pub users_affected_medium_pct: f64,
    /// The severity of a degraded external dependency. Default [`Severity::Medium`]: the
    /// operations seed's provider failure procedure falls back to an alternate provider, the
    /// default scale's P2 "partial degradation with a workaround".
    pub degraded_dependency: Severity,
    /// The severity of a critical feature being down. Default [`Severity::High`]: the
    /// incident-response seed's P1 examples "critical feature unavailable", "payment processing
    /// failed" (the compose seed's P2 of P1–P4, "major feature broken").
    pub critical_feature_down: Severity,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            error_rate_high: 0.10,
            error_rate_medium: 0.05,
            error_rate_low: 0.01,
            p95_high: Duration::from_secs(5),
            p95_medium: Duration::from_secs(3),
            p95_low: Duration::from_secs(2),
            users_affected_critical_pct: 100.0,
            users_affected_high_pct: 50.0,
            users_affected_medium_pct: 10.0,
            degraded_dependency: Severity::Medium,
            critical_feature_down: Severity::High,
        }
    }
}

impl Thresholds {
    /// Check that every number is finite and in range and each ladder is ordered
    /// (P1 ≥ P2 ≥ P3).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the first offending field.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::Thresholds;
    /// let mut t = Thresholds::default();
    /// t.error_rate_low = 0.2; // above the P1 threshold
    /// assert_eq!(t.validate().unwrap_err().kind(), ops_core::ErrorKind::InvalidInput);
    /// ```
    pub fn validate(&self) -> Result<(), OpsError> {
        let fractions = [
            ("error_rate_high", self.error_rate_high, 1.0),
            ("error_rate_medium", self.error_rate_medium, 1.0),
            ("error_rate_low", self.error_rate_low, 1.0),
            (
                "users_affected_critical_pct",
                self.users_affected_critical_pct,
                100.0,
            ),
            (
                "users_affected_high_pct",
                self.users_affected_high_pct,
                100.0,
            ),
            (
                "users_affected_medium_pct",
                self.users_affected_medium_pct,
                100.0,
            ),
        ];
        for (field, value, max) in fractions {
            if !(0.0..=max).contains(&value) {
                return Err(invalid(field, format!("must be between 0 and {max}")));
            }
        }
        if self.error_rate_high < self.error_rate_medium
            || self.error_rate_medium < self.error_rate_low
        {
            return Err(invalid(
                "error_rate",
                "thresholds must not decrease from P1 to P3",
            ));
        }
        if self.p95_high < self.p95_medium || self.p95_medium < self.p95_low {
            return Err(invalid("p95", "thresholds must not decrease from P1 to P3"));
        }
        if self.users_affected_critical_pct < self.users_affected_high_pct
            || self.users_affected_high_pct < self.users_affected_medium_pct
        {
            return Err(invalid(
                "users_affected",
                "thresholds must not decrease from P0 to P2",
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, why: impl Into<String>) -> OpsError {
    OpsError::invalid("incident_thresholds", field, why)
}

/// The severity the evidence supports, and why.
///
/// `reasons` has one line per rule that fired, most severe first; it is empty when no rule
/// fired, and then `severity` is the floor, [`Severity::Low`].
///
/// # Examples
/// ```
/// use ops_core::incident::{Classifier, Severity, Signals};
/// let c = Classifier::default().classify(&Signals::default());
/// assert_eq!(c.severity, Severity::Low);
/// assert!(c.reasons.is_empty());
/// assert_eq!(c.to_string(), "P3: no rule fired");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Classification {
    /// The most severe level of any rule that fired.
    pub severity: Severity,
    /// Every rule that fired, in words.
    pub reasons: Vec<String>,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() {
            write!(f, "{}: no rule fired", self.severity)
        } else {
            write!(f, "{}: {}", self.severity, self.reasons.join("; "))
        }
    }
}

/// Decides an incident's severity from [`Signals`] and [`Thresholds`].
///
/// The severity is the most severe rule that fired; each rule that fired adds a reason naming
/// the observed value, the threshold and the level on the classifier's [`SeverityScale`].
///
/// # Examples
/// ```
/// use ops_core::incident::{Classifier, Severity, SeverityScale, Signals, Thresholds};
/// let classifier = Classifier::new(Thresholds::default());
/// let c = classifier.classify(&Signals::default().with_error_rate(0.12));
/// assert_eq!(c.severity, Severity::High);
/// assert_eq!(c.reasons, ["error rate 12.0% >= 10% (P1)"]);
///
/// // The same rule, labelled on the seeds' P1–P4 scale.
/// let c = classifier.with_scale(SeverityScale::p1_to_p4())
///     .classify(&Signals::default().with_error_rate(0.12));
/// assert_eq!(c.reasons, ["error rate 12.0% >= 10% (P2)"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classifier {
    thresholds: Thresholds,
    scale: SeverityScale,
}

impl Classifier {
    /// A classifier with `thresholds`, labelling levels on the default P0–P3 scale.
    ///
    /// The thresholds are used as given; call [`Thresholds::validate`] on configuration first.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Classifier, Severity, Signals, Thresholds};
    /// let mut strict = Thresholds::default();
    /// strict.error_rate_high = 0.02;
    /// let c = Classifier::new(strict).classify(&Signals::default().with_error_rate(0.03));
    /// assert_eq!(c.severity, Severity::High);
    /// ```
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            scale: SeverityScale::default(),
        }
    }

    /// Label the levels in reasons with `scale` (e.g. [`SeverityScale::p1_to_p4`]).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Classifier, SeverityScale, Signals};
    /// let c = Classifier::default().with_scale(SeverityScale::p1_to_p4());
    /// let out = c.classify(&Signals::default().with_service_down(true));
    /// assert_eq!(out.reasons, ["service down (P1)"]);
    /// ```
    #[must_use]
    pub fn with_scale(mut self, scale: SeverityScale) -> Self {
        self.scale = scale;
        self
    }

    /// The thresholds in use.
    ///
    /// # Examples
    /// ```
    /// let c = ops_core::incident::Classifier::default();
    /// assert_eq!(c.thresholds().error_rate_medium, 0.05);
    /// ```
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Classify `signals`: the most severe rule that fired, and every rule that fired.
    ///
    /// Rules: service down, data at risk and a security incident are P0; users affected,
    /// error rate and p95 latency are compared with their tiers (only the most severe tier of
    /// each is reported); a critical feature down and a degraded dependency take the
    /// severities configured in [`Thresholds`]. A signal that is `NaN` never fires.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{Classifier, Severity, Signals};
    /// let c = Classifier::default().classify(
    ///     &Signals::default()
    ///         .with_data_at_risk(true)
    ///         .with_p95_latency(Duration::from_secs(4)),
    /// );
    /// assert_eq!(c.severity, Severity::Critical);
    /// assert_eq!(c.reasons, ["data at risk (P0)", "p95 latency 4s >= 3s (P2)"]);
    /// ```
    pub fn classify(&self, signals: &Signals) -> Classification {
        let t = &self.thresholds;
        let mut fired: Vec<(Severity, String)> = Vec::new();
        if signals.service_down {
            fired.push((Severity::Critical, "service down".to_owned()));
        }
        if signals.data_at_risk {
            fired.push((Severity::Critical, "data at risk".to_owned()));
        }
        if signals.security_incident {
            fired.push((Severity::Critical, "security incident".to_owned()));
        }
        if let Some(pct) = signals.users_affected_pct {
            let tiers = [
                (Severity::Critical, t.users_affected_critical_pct),
                (Severity::High, t.users_affected_high_pct),
                (Severity::Medium, t.users_affected_medium_pct),
            ];
            if let Some((sev, limit)) = tiers.into_iter().find(|(_, limit)| pct >= *limit) {
                fired.push((
                    sev,
                    format!("users affected {}% >= {}%", decimal(pct, 1), compact(limit)),
                ));
            }
        }
        if let Some(rate) = signals.error_rate {
            let tiers = [
                (Severity::High, t.error_rate_high),
                (Severity::Medium, t.error_rate_medium),
                (Severity::Low, t.error_rate_low),
            ];
            if let Some((sev, limit)) = tiers.into_iter().find(|(_, limit)| rate >= *limit) {
                fired.push((
                    sev,
                    format!(
                        "error rate {}% >= {}%",
                        decimal(rate * 100.0, 1),
                        compact(limit * 100.0)
                    ),
                ));
            }
        }
        if let Some(p95) = signals.p95_latency {
            let tiers = [
                (Severity::High, t.p95_high),
                (Severity::Medium, t.p95_medium),
                (Severity::Low, t.p95_low),
            ];
            if let Some((sev, limit)) = tiers.into_iter().find(|(_, limit)| p95 >= *limit) {
                fired.push((
                    sev,
                    format!(
                        "p95 latency {}s >= {}s",
                        compact(p95.as_secs_f64()),
                        compact(limit.as_secs_f64())
                    ),
                ));
            }
        }
        if signals.critical_feature_down {
            fired.push((t.critical_feature_down, "critical feature down".to_owned()));
        }
        if let Some(dep) = &signals.degraded_dependency {
            fired.push((
                t.degraded_dependency,
                format!("degraded dependency: {}", super::one_line(dep)),
            ));
        }
        // Stable: rules of the same level keep their order.
        fired.sort_by_key(|(sev, _)| std::cmp::Reverse(*sev));
        Classification {
            severity: fired.first().map_or(Severity::Low, |(sev, _)| *sev),
            reasons: fired
                .into_iter()
                .map(|(sev, why)| format!("{why} ({})", self.scale.label(sev)))
                .collect(),
        }
    }
}

/// `value` with exactly `places` decimals.
fn decimal(value: f64, places: usize) -> String {
    format!("{value:.places$}")
}

/// `value` with at most three decimals and no trailing zeros: `10`, `2.5`, `0.125`.
fn compact(value: f64) -> String {
    let s = format!("{value:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    trait UsersAffected {
        fn with_users_affected(self, pct: f64) -> Self;
    }

    impl UsersAffected for Signals {
        fn with_users_affected(mut self, pct: f64) -> Self {
            self.users_affected_pct = Some(pct);
            self
        }
    }

    fn classify(signals: &Signals) -> Classification {
        Classifier::default().classify(signals)
    }

    #[test]
    fn error_rate_at_exactly_each_threshold_fires_that_tier() {
        let t = Thresholds::default();
        let at = |rate| classify(&Signals::default().with_error_rate(rate)).severity;
        assert_eq!(at(t.error_rate_high), Severity::High);
        assert_eq!(at(t.error_rate_medium), Severity::Medium);
        assert_eq!(at(t.error_rate_low), Severity::Low);
        let c = classify(&Signals::default().with_error_rate(t.error_rate_high));
        assert_eq!(c.reasons, ["error rate 10.0% >= 10% (P1)"]);
    }

    #[test]
    fn error_rate_just_below_a_threshold_falls_to_the_next_tier() {
        let c = classify(&Signals::default().with_error_rate(0.099));
        assert_eq!(c.severity, Severity::Medium);
        assert_eq!(c.reasons, ["error rate 9.9% >= 5% (P2)"]);
        let c = classify(&Signals::default().with_error_rate(0.009));
        assert_eq!(c.severity, Severity::Low);
        assert!(c.reasons.is_empty(), "below every tier: {c}");
    }

    #[test]
    fn latency_boundaries_are_inclusive() {
        let at = |ms| classify(&Signals::default().with_p95_latency(Duration::from_millis(ms)));
        assert_eq!(at(5000).severity, Severity::High);
        assert_eq!(at(4999).severity, Severity::Medium);
        assert_eq!(at(3000).severity, Severity::Medium);
        assert_eq!(at(2999).reasons, ["p95 latency 2.999s >= 2s (P3)"]);
        assert!(at(1999).reasons.is_empty());
    }

    #[test]
    fn every_fired_rule_is_a_reason_most_severe_first() {
        let c = classify(
            &Signals::default()
                .with_p95_latency(Duration::from_secs(6))
                .with_degraded_dependency("kiro.ai")
                .with_security_incident(true)
                .with_users_affected(60.0),
        );
        assert_eq!(c.severity, Severity::Critical);
        assert_eq!(
            c.reasons,
            [
                "security incident (P0)",
                "users affected 60.0% >= 50% (P1)",
                "p95 latency 6s >= 5s (P1)",
                "degraded dependency: kiro.ai (P2)",
            ]
        );
    }

    #[test]
    fn reasons_use_the_classifier_scale_labels() {
        let classifier = Classifier::default().with_scale(SeverityScale::p1_to_p4());
        let c = classifier.classify(
            &Signals::default()
                .with_service_down(true)
                .with_error_rate(0.02),
        );
        assert_eq!(c.severity, Severity::Critical);
        assert_eq!(
            c.reasons,
            ["service down (P1)", "error rate 2.0% >= 1% (P4)"]
        );
    }

    #[test]
    fn configured_thresholds_replace_every_default() {
        let t = Thresholds {
            error_rate_high: 0.5,
            degraded_dependency: Severity::High,
            ..Thresholds::default()
        };
        let c = Classifier::new(t).classify(
            &Signals::default()
                .with_error_rate(0.2)
                .with_degraded_dependency("cdn"),
        );
        assert_eq!(c.severity, Severity::High);
        assert_eq!(
            c.reasons,
            [
                "degraded dependency: cdn (P1)",
                "error rate 20.0% >= 5% (P2)"
            ]
        );
    }

    #[test]
    fn absorbing_keeps_every_flag_and_the_worst_measurement() {
        let mut s = Signals::default().with_error_rate(0.2);
        s.absorb(
            Signals::default()
                .with_error_rate(0.05)
                .with_service_down(true),
        );
        s.absorb(
            Signals::default()
                .with_error_rate(f64::NAN)
                .with_degraded_dependency("a"),
        );
        s.absorb(Signals::default().with_degraded_dependency("b"));
        assert_eq!(s.error_rate, Some(0.2));
        assert!(s.service_down);
        assert_eq!(s.degraded_dependency.as_deref(), Some("a"));
    }

    #[test]
    fn nan_signals_never_fire() {
        let c = classify(
            &Signals::default()
                .with_error_rate(f64::NAN)
                .with_users_affected(f64::NAN),
        );
        assert_eq!(c.severity, Severity::Low);
        assert!(c.reasons.is_empty());
    }

    #[test]
    fn validate_rejects_unordered_or_out_of_range_thresholds() {
        assert!(Thresholds::default().validate().is_ok());
        let broken = [
            Thresholds {
                p95_low: Duration::from_secs(10),
                ..Thresholds::default()
            },
            Thresholds {
                error_rate_high: f64::NAN,
                ..Thresholds::default()
            },
            Thresholds {
                users_affected_medium_pct: 150.0,
                ..Thresholds::default()
            },
        ];
        for t in broken {
            let err = t.validate().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{t:?}");
        }
    }
}
