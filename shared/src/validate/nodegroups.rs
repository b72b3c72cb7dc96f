//! Node group rules.

use std::sync::LazyLock;

use regex::Regex;

use super::names::{check_label, check_unique, Reserved};
use super::{field, index, key, rules, Issues};
use crate::naming::MAX_NODEGROUP_NAME_LEN;
use crate::spec::NodeGroupSpec;

/// Most managed node groups per cluster (EKS quota).
pub(crate) const MAX_NODEGROUPS: usize = 30;
/// Most nodes per managed node group (EKS quota).
pub(crate) const MAX_NODES: u32 = 450;

static INSTANCE_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z][a-z0-9-]*[0-9][a-z0-9-]*)\.(nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal(-[0-9]+xl)?)$")
        .expect("regex")
});
/// Graviton families: a generation digit followed by `g` (m6g, c7gn, r8gd, t4g) and a1.
static GRAVITON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([a-z]+[0-9]+g[a-z]*|a1)$").expect("regex"));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
        .expect("regex")
});
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$").expect("regex"));

const RESERVED_LABEL_PREFIXES: &[&str] = &["kubernetes.io/", "k8s.io/", "eks.amazonaws.com/"];

/// Whether `key` is a Kubernetes qualified name (`[prefix/]name`, name at most 63, prefix at most 253).
pub(crate) fn is_qualified_name(key: &str) -> bool {
    if !QUALIFIED_NAME.is_match(key) {
        return false;
    }
    match key.rsplit_once('/') {
        Some((prefix, name)) => prefix.len() <= 253 && name.len() <= 63,
        None => key.len() <= 63,
    }
}

/// Whether `value` is a Kubernetes label value.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.len() <= 63 && LABEL_VALUE.is_match(value)
}

/// Whether an instance type is Graviton (arm64).
fn is_arm_instance(instance_type: &str) -> bool {
    instance_type
        .split('.')
        .next()
        .is_some_and(|family| GRAVITON.is_match(family))
}

/// Every node group rule. `base` is the path of the nodeGroups array.
pub(crate) fn check(issues: &mut Issues, base: &str, groups: &[NodeGroupSpec]) {
    if groups.is_empty() {
        issues.push(
            base,
            rules::NODEGROUPS_EMPTY,
            "nodeGroups is empty: omit it for the standard layout, or list at least one group",
        );
    }
    if groups.len() > MAX_NODEGROUPS {
        issues.push(
            base,
            rules::NODEGROUPS_COUNT,
            format!(
                "{} node groups; EKS allows at most {MAX_NODEGROUPS} per cluster",
                groups.len()
            ),
        );
    }
    let mut names = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let at = index(base, i);
        let name_path = field(&at, "name");
        check_label(
            issues,
            &name_path,
            "node group name",
            &g.name,
            MAX_NODEGROUP_NAME_LEN,
            Reserved::Basic,
        );
        names.push((name_path, g.name.as_str()));
        check_one(issues, &at, g);
    }
    check_unique(issues, "node group name", &names);
}

fn check_one(issues: &mut Issues, at: &str, g: &NodeGroupSpec) {
    check_instance_types(issues, at, g);
    check_sizes(issues, at, g);
    check_labels(issues, at, g);
    check_taints(issues, at, g);
}

/// At least one type, each an EC2 instance type of the AMI's architecture.
fn check_instance_types(issues: &mut Issues, at: &str, g: &NodeGroupSpec) {
    let types_path = field(at, "instanceTypes");
    if g.instance_types.is_empty() {
        issues.push(
            types_path.as_str(),
            rules::INSTANCE_TYPES_EMPTY,
            "no instance types: list at least one, e.g. m5.large",
        );
    }
    for (j, t) in g.instance_types.iter().enumerate() {
        let path = index(&types_path, j);
        if !INSTANCE_TYPE.is_match(t) {
            issues.push(
                path,
                rules::INSTANCE_TYPE,
                format!(
                    "{t:?} is not an EC2 instance type like m5.large, c6i.2xlarge or t3.medium"
                ),
            );
        } else if is_arm_instance(t) != g.ami_type.is_arm() {
            issues.push(
                path,
                rules::INSTANCE_ARCHITECTURE,
                format!(
                    "{t} is {} but amiType {} is {}",
                    if is_arm_instance(t) {
                        "arm64 (Graviton)"
                    } else {
                        "x86_64"
                    },
                    g.ami_type.as_str(),
                    if g.ami_type.is_arm() {
                        "arm64"
                    } else {
                        "x86_64"
                    }
                ),
            );
        }
    }
}

/// The scaling bounds (`minSize <= desiredSize <= maxSize <= MAX_NODES`) and the disk size.
fn check_sizes(issues: &mut Issues, at: &str, g: &NodeGroupSpec) {
    if g.max_size == 0 || g.max_size > MAX_NODES {
        issues.push(
            field(at, "maxSize"),
            rules::SCALING_BOUNDS,
            format!(
                "maxSize is {}; it must be between 1 and {MAX_NODES}",
                g.max_size
            ),
        );
    }
    if g.min_size > g.max_size {
        issues.push(
            field(at, "minSize"),
            rules::SCALING_BOUNDS,
            format!(
                "minSize {} is greater than maxSize {}",
                g.min_size, g.max_size
            ),
        );
    }
    if g.desired_size < g.min_size || g.desired_size > g.max_size {
        issues.push(
            field(at, "desiredSize"),
            rules::SCALING_BOUNDS,
            format!(
                "desiredSize {} must be between minSize {} and maxSize {}",
                g.desired_size, g.min_size, g.max_size
            ),
        );
    }
    if !(20..=16384).contains(&g.disk_size_gib) {
        issues.push(
            field(at, "diskSizeGib"),
            rules::DISK_SIZE,
            format!(
                "diskSizeGib is {}; it must be between 20 and 16384",
                g.disk_size_gib
            ),
        );
    }
}

/// Label keys are qualified names outside the reserved prefixes; values are label values.
fn check_labels(issues: &mut Issues, at: &str, g: &NodeGroupSpec) {
    let labels_path = field(at, "labels");
    for (k, v) in &g.labels {
        let path = key(&labels_path, k);
        if !is_qualified_name(k) {
            issues.push(
                path.as_str(),
                rules::LABEL_SYNTAX,
                format!("label key {k:?} is not a Kubernetes qualified name ([prefix/]name)"),
            );
        } else if RESERVED_LABEL_PREFIXES
            .iter()
            .any(|p| k.starts_with(p) || k.contains(&format!(".{p}")))
        {
            issues.push(
                path.as_str(),
                rules::RESERVED_LABEL,
                format!("label key {k:?} uses a prefix reserved for Kubernetes and EKS"),
            );
        }
        if !is_label_value(v) {
            issues.push(
                path,
                rules::LABEL_SYNTAX,
                format!("label value {v:?} is not a Kubernetes label value (at most 63 letters, digits, `-_.`)"),
            );
        }
    }
}

/// Taint keys and values are label syntax, each (key, effect) once.
fn check_taints(issues: &mut Issues, at: &str, g: &NodeGroupSpec) {
    let taints_path = field(at, "taints");
    for (j, t) in g.taints.iter().enumerate() {
        let taint_path = index(&taints_path, j);
        if !is_qualified_name(&t.key) {
            issues.push(
                field(&taint_path, "key"),
                rules::TAINT_SYNTAX,
                format!("taint key {:?} is not a Kubernetes qualified name", t.key),
            );
        }
        if !is_label_value(&t.value) {
            issues.push(
                field(&taint_path, "value"),
                rules::TAINT_SYNTAX,
                format!("taint value {:?} is not a Kubernetes label value", t.value),
            );
        }
        if g.taints[..j]
            .iter()
            .any(|o| o.key == t.key && o.effect == t.effect)
        {
            issues.push(
                taint_path,
                rules::DUPLICATE_TAINT,
                format!("taint {} with effect {:?} is listed twice", t.key, t.effect),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types() {
        for good in [
            "m5.large",
            "c6i.2xlarge",
            "t3.medium",
            "m7g.metal-48xl",
            "u-6tb1.metal",
            "c7gn.16xlarge",
            "inf2.xlarge",
            "m5.metal",
        ] {
            assert!(INSTANCE_TYPE.is_match(good), "{good}");
        }
        for bad in [
            "m5",
            "M5.large",
            "m5.huge",
            "large",
            "m5.large ",
            "m5..large",
            "m5.0xlarge",
            "*.large",
        ] {
            assert!(!INSTANCE_TYPE.is_match(bad), "{bad}");
        }
        assert!(is_arm_instance("m6g.large"));
        assert!(is_arm_instance("c7gn.xlarge"));
        assert!(is_arm_instance("t4g.medium"));
        assert!(!is_arm_instance("m5.large"));
        assert!(!is_arm_instance("c6i.2xlarge"));
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("workload"));
        assert!(is_qualified_name("tenantry.io/role"));
        assert!(!is_qualified_name("-bad"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
    }
}
