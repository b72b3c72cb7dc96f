//! What an operator does by hand when the workflows could not (the runbooks of `docs/runbooks/`),
//! as library calls the CLI wraps: each checks its preconditions first and changes nothing when
//! one fails.

pub mod lease;
pub mod remediation;
