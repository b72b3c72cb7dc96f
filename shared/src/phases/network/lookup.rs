//! Reading the network's EC2 tags: a tag's value, the platform's tag, the `Name`, and the one
//! item of a name. Each kind's module in `resources/` finds its resources (every describe call
//! filters by the platform tag, and the result is checked again: moto ignores tag filters on
//! some operations, such as DescribeNatGateways).

use aws_sdk_ec2::types::{Filter, Tag};

/// The value of tag `key`, if present.
pub fn tag<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Whether `tags` carry the platform tag of `platform_id`.
pub fn ours(tags: &[Tag], platform_id: &str) -> bool {
    crate::phases::common::is_platforms(tags, platform_id)
}

/// The `Name` tag.
pub fn name(tags: &[Tag]) -> Option<&str> {
    tag(tags, "Name")
}

pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The first item (by id, so the choice is stable) whose `Name` tag is `wanted`.
pub fn named<'i, T>(
    items: &'i [T],
    wanted: &str,
    tags: impl Fn(&T) -> &[Tag],
    id: impl Fn(&T) -> Option<&str>,
) -> Option<&'i T> {
    items
        .iter()
        .filter(|i| name(tags(i)) == Some(wanted))
        .min_by(|a, b| id(a).cmp(&id(b)))
}
