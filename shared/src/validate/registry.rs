//! `repositories` rules (platform and tenant): names ECR accepts, each once, and a number of
//! images to keep that a lifecycle policy can express.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{field, index, rules, Issues};
use crate::spec::{RepositorySpec, MAX_KEEP_IMAGES};

/// One path component of an ECR repository name, as ECR defines it.
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+([._-][a-z0-9]+)*$").expect("valid regex"));
const NAME_LEN: std::ops::RangeInclusive<usize> = 2..=64;
/// The longest repository name ECR accepts, path included.
const FULL_NAME_MAX: usize = 256;

/// The repositories at `at` (`$.repositories` or `$.tenants[i].repositories`): at most `max`.
pub(crate) fn check(list: &[RepositorySpec], at: &str, max: usize, issues: &mut Issues) {
    if list.len() > max {
        issues.push(
            at,
            rules::REPOSITORY,
            format!("{} repositories; at most {max}", list.len()),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, repo) in list.iter().enumerate() {
        let here = index(at, i);
        let name = &repo.name;
        if !NAME_LEN.contains(&name.len()) || !NAME.is_match(name) {
            issues.push(
                field(&here, "name"),
                rules::REPOSITORY,
                format!(
                    "{name:?} is not a repository name: 2 to 64 lowercase letters and digits, in \
                     groups separated by a single '.', '_' or '-'"
                ),
            );
        } else if !seen.insert(name.as_str()) {
            issues.push(
                field(&here, "name"),
                rules::REPOSITORY,
                format!("repository {name:?} is named twice"),
            );
        }
        if !(1..=MAX_KEEP_IMAGES).contains(&repo.keep_images) {
            issues.push(
                field(&here, "keepImages"),
                rules::REPOSITORY,
                format!(
                    "keepImages {} is out of range: 1 to {MAX_KEEP_IMAGES}",
                    repo.keep_images
                ),
            );
        }
    }
}

/// The full names the repositories at `at` get (`full_name` maps a repository's own name to
/// it): each path component must be one ECR accepts, and the whole name at most 256 characters.
/// A platform id, environment or tenant name may hold `--`, which Tenantry's other names allow
/// and ECR's do not; the issue is reported at `at` and its message names the component. Nothing
/// to check without repositories.
pub(crate) fn check_paths(
    list: &[RepositorySpec],
    at: &str,
    full_name: impl Fn(&str) -> String,
    issues: &mut Issues,
) {
    let Some(first) = list.first() else {
        return;
    };
    let full = full_name(&first.name);
    let path = full.rsplit_once('/').map_or("", |(p, _)| p);
    if let Some(bad) = path.split('/').find(|c| !NAME.is_match(c)) {
        issues.push(
            at,
            rules::REPOSITORY,
            format!(
                "repositories would be named {full:?}, and ECR refuses the path component {bad:?} \
                 (lowercase letters and digits, in groups separated by a single '.', '_' or '-'): \
                 rename the platform, environment or tenant, or ask for no repositories"
            ),
        );
        return;
    }
    for (i, repo) in list.iter().enumerate() {
        let full = full_name(&repo.name);
        if full.len() > FULL_NAME_MAX {
            issues.push(
                field(&index(at, i), "name"),
                rules::REPOSITORY,
                format!(
                    "{full:?} is {} characters; ECR allows {FULL_NAME_MAX}",
                    full.len()
                ),
            );
        }
    }
}
