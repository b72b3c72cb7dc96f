//! Tenantry core library: the request model and its validation, naming and planning, the DynamoDB
//! state store, AWS client construction, and the phase handlers that the Lambda binaries under
//! `functions/` (and the local stack's gateway) run.

pub mod aws;
pub mod compliance;
pub mod deps;
pub mod drift;
pub mod error;
pub mod events;
pub mod functions;
pub mod kubernetes;
pub mod naming;
pub mod operator;
pub mod phases;
pub mod plan;
pub mod policies;
pub mod resources;
pub mod spec;
pub mod store;
pub mod validate;
pub mod workflows;
