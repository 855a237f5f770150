#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bulk;
mod combinators;
pub mod condition;
pub mod config;
mod error;
mod http;
mod prometheus;
mod provider;
mod redirect;
mod tcp;
mod tls;

pub use bulk::{BulkOptions, check_all};
pub use combinators::{AllOf, AnyOf, Retry, Stability, WatchOptions, watch};
pub use condition::{Condition, ConditionError};
pub use error::{Error, Result};
pub use http::{HttpProbe, HttpProbeBuilder, Redirects};
pub use prometheus::{
    MetricProbe, PrometheusConfig, PrometheusMetrics, PrometheusMetricsBuilder, Threshold,
};
pub use provider::provider_probe;
pub use tcp::TcpProbe;
pub use tls::{CertificateInfo, CertificateReport, TlsProbe, TlsVersion};
