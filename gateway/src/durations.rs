//! Simulated durations: moto's clusters and node groups are ACTIVE at once; the gateway holds
//! them CREATING (and deleted ones DELETING) for a configured time, so the state machines' poll
//! loops run as they would in AWS.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long long-running EKS operations take. Default: everything instant (moto's behaviour).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Durations {
    /// A cluster stays CREATING this long after CreateCluster.
    pub cluster_creating_secs: u64,
    /// A node group stays CREATING this long after CreateNodegroup.
    pub nodegroup_creating_secs: u64,
    /// An add-on stays CREATING this long after CreateAddon (and UPDATING after UpdateAddon).
    pub addon_creating_secs: u64,
    /// A deleted cluster still answers DescribeCluster with DELETING this long.
    pub cluster_deleting_secs: u64,
    /// A deleted node group still answers DescribeNodegroup with DELETING this long.
    pub nodegroup_deleting_secs: u64,
    /// UpdateClusterVersion (and other cluster updates) stay InProgress / UPDATING this long.
    pub cluster_updating_secs: u64,
    /// A NAT gateway stays `pending` this long after CreateNatGateway (`nat.rs`).
    pub nat_pending_secs: u64,
}

/// When things were created or deleted, keyed by (region, cluster[, node group]).
#[derive(Default)]
pub struct Timeline {
    cluster_created: HashMap<(String, String), Instant>,
    nodegroup_created: HashMap<(String, String, String), Instant>,
    cluster_deleted: HashMap<(String, String), (Instant, Value)>,
    nodegroup_deleted: HashMap<(String, String, String), (Instant, Value)>,
}

pub fn within(since: Instant, secs: u64) -> bool {
    since.elapsed() < Duration::from_secs(secs)
}

impl Timeline {
    pub fn cluster_created(&mut self, region: &str, cluster: &str) {
        let key = (region.to_owned(), cluster.to_owned());
        self.cluster_deleted.remove(&key);
        self.cluster_created.insert(key, Instant::now());
    }

    pub fn nodegroup_created(&mut self, region: &str, cluster: &str, nodegroup: &str) {
        let key = (region.to_owned(), cluster.to_owned(), nodegroup.to_owned());
        self.nodegroup_deleted.remove(&key);
        self.nodegroup_created.insert(key, Instant::now());
    }

    /// Remembers the last description of a deleted cluster (to answer DELETING for a while).
    pub fn cluster_deleted(&mut self, region: &str, cluster: &str, description: Value) {
        let key = (region.to_owned(), cluster.to_owned());
        self.cluster_created.remove(&key);
        self.nodegroup_created
            .retain(|(r, c, _), _| !(r == region && c == cluster));
        self.cluster_deleted
            .insert(key, (Instant::now(), description));
    }

    pub fn nodegroup_deleted(
        &mut self,
        region: &str,
        cluster: &str,
        nodegroup: &str,
        description: Value,
    ) {
        let key = (region.to_owned(), cluster.to_owned(), nodegroup.to_owned());
        self.nodegroup_created.remove(&key);
        self.nodegroup_deleted
            .insert(key, (Instant::now(), description));
    }

    /// Status override for a cluster moto describes.
    pub fn cluster_status(
        &self,
        d: &Durations,
        region: &str,
        cluster: &str,
    ) -> Option<&'static str> {
        let created = self
            .cluster_created
            .get(&(region.to_owned(), cluster.to_owned()))?;
        within(*created, d.cluster_creating_secs).then_some("CREATING")
    }

    pub fn nodegroup_status(
        &self,
        d: &Durations,
        region: &str,
        cluster: &str,
        nodegroup: &str,
    ) -> Option<&'static str> {
        let key = (region.to_owned(), cluster.to_owned(), nodegroup.to_owned());
        let created = self.nodegroup_created.get(&key)?;
        within(*created, d.nodegroup_creating_secs).then_some("CREATING")
    }

    /// A DELETING description of a cluster moto no longer knows, while the deletion "runs".
    pub fn deleting_cluster(&self, d: &Durations, region: &str, cluster: &str) -> Option<Value> {
        let (at, desc) = self
            .cluster_deleted
            .get(&(region.to_owned(), cluster.to_owned()))?;
        within(*at, d.cluster_deleting_secs).then(|| {
            let mut desc = desc.clone();
            desc["status"] = Value::from("DELETING");
            desc
        })
    }

    pub fn deleting_nodegroup(
        &self,
        d: &Durations,
        region: &str,
        cluster: &str,
        nodegroup: &str,
    ) -> Option<Value> {
        let key = (region.to_owned(), cluster.to_owned(), nodegroup.to_owned());
        let (at, desc) = self.nodegroup_deleted.get(&key)?;
        within(*at, d.nodegroup_deleting_secs).then(|| {
            let mut desc = desc.clone();
            desc["status"] = Value::from("DELETING");
            desc
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creating_then_active() {
        let mut t = Timeline::default();
        t.cluster_created("r", "c");
        let d = Durations {
            cluster_creating_secs: 60,
            ..Durations::default()
        };
        assert_eq!(t.cluster_status(&d, "r", "c"), Some("CREATING"));
        assert_eq!(t.cluster_status(&Durations::default(), "r", "c"), None);
        assert_eq!(t.cluster_status(&d, "r", "other"), None);
    }

    #[test]
    fn durations_json() {
        let d: Durations = serde_json::from_str(r#"{"clusterCreatingSecs": 3}"#).unwrap();
        assert_eq!(d.cluster_creating_secs, 3);
        assert_eq!(d.addon_creating_secs, 0);
    }
}
