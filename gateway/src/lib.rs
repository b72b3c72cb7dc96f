//! Local stack: a moto server plus the Rust gateway in front of it.
//!
//! The gateway listens on moto's `MOTO_PORT`, so everything moto's Step Functions interpreter calls
//! (Lambda Invoke, service integrations) comes back through it. It
//! - answers the Lambda Invoke API with Tenantry's own handlers ([`invoke`]), in process or on
//!   the real function binaries behind a local Lambda Runtime API ([`runtime_api`]),
//! - serves the EKS APIs moto lacks ([`eks`]) and simulates long operations ([`durations`]),
//! - serves CloudWatch alarms in Smithy RPC v2 CBOR, which moto does not speak ([`cloudwatch`]),
//! - injects faults ([`faults`]) and counts every AWS call ([`calls`]),
//! - forwards everything else to moto verbatim ([`proxy`]),
//! - and runs a Kubernetes API double on its own port ([`kube`]).
//!
//! [`stack::LocalStack`] starts and stops all of it.

mod accounts;
pub mod calls;
pub mod cloudwatch;
mod cluster_sg;
pub mod control_plane;
pub mod durations;
pub mod eks;
pub mod faults;
pub mod inspect;
pub mod invoke;
mod kube_front;
/// The Kubernetes API double (its own crate, so the phase scenario tests can use it in process).
pub use tenantry_kube_double as kube;
pub mod moto;
mod nat;
pub mod proxy;
pub mod runtime_api;
pub mod s3;
pub mod securityhub;
pub mod stack;

pub use calls::{CallLog, CallRecord, InvocationRecord, KubeCallRecord};
pub use durations::Durations;
pub use faults::{CrashRule, Faults};
pub use proxy::install_crypto_provider;
pub use runtime_api::ColdStart;
pub use stack::{run_until_signal, LocalStack, StackOptions};
