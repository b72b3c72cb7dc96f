pub mod compliance;
pub mod dev;
pub mod drift;
pub mod lease;
pub mod plan;
pub mod remediation;
pub mod requests;
pub mod runs;
pub mod status;
pub mod sweep;
pub mod tenant;
pub mod validate;

use crate::errors::invalid_input;
use anyhow::Context;
use std::io::Read;
use std::path::Path;

/// Reads a request file, or standard input for `-`.
pub fn read_input(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context(invalid_input("reading standard input"))?;
        return Ok(s);
    }
    std::fs::read_to_string(file)
        .with_context(|| invalid_input(format!("reading {}", file.display())))
}
