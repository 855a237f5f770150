#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod console;
mod error;
mod pagerduty;
mod retry;
mod router;
mod slack;
mod webhook;

pub use console::ConsoleNotifier;
pub use error::{Error, Result};
pub use pagerduty::{EventAction, PagerDutyNotifier, PagerDutyNotifierBuilder, pagerduty_severity};
pub use retry::{RetryPolicy, delivery_policy, retry_after};
pub use router::{Delivery, Router};
pub use slack::{SlackNotifier, SlackNotifierBuilder, slack_payload};
pub use webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookFormat, WebhookNotifier, WebhookNotifierBuilder,
    alertmanager_payload, sign, verify, webhook_payload,
};
