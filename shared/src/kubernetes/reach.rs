//! Whether NetworkPolicies let the pods of one namespace reach the pods of another on a port:
//! Kubernetes' rule, for policies that select every pod of their namespace (all of Tenantry's
//! do). A connection needs the sender's namespace to let it out, if any policy there isolates
//! egress, and the receiver's to let it in, if any policy there isolates ingress.
//!
//! The answer over-approximates where Kubernetes leaves room: an `ipBlock` counts as matching
//! every pod (CNIs differ on whether pod addresses match it) and a peer's `podSelector` as
//! matching every pod of the peer's namespace. So "does not connect" is certain; tests use it to
//! show isolation from live objects, not from what Tenantry meant to write.

use serde_json::Value;

/// The label the API server sets on every namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether pods of namespace `from` may open a `protocol` (`TCP`/`UDP`) connection to pods of
/// namespace `to` on `port`, under `policies` (NetworkPolicy objects as JSON, of any namespace).
pub fn connects(policies: &[Value], from: &str, to: &str, port: u16, protocol: &str) -> bool {
    let out = Side {
        direction: "egress",
        kind: "Egress",
        peers: "to",
    };
    let inn = Side {
        direction: "ingress",
        kind: "Ingress",
        peers: "from",
    };
    let flow = Flow {
        port,
        protocol,
        policies,
    };
    flow.allows(&out, from, to) && flow.allows(&inn, to, from)
}

struct Side {
    direction: &'static str,
    kind: &'static str,
    peers: &'static str,
}

struct Flow<'a> {
    port: u16,
    protocol: &'a str,
    policies: &'a [Value],
}

impl Flow<'_> {
    /// Whether namespace `own` lets the connection with `peer` through on `side`.
    fn allows(&self, side: &Side, own: &str, peer: &str) -> bool {
        let isolating: Vec<&Value> = self
            .policies
            .iter()
            .filter(|p| p["kind"] == "NetworkPolicy" && p["metadata"]["namespace"] == own)
            .filter(|p| types(p).any(|t| t == side.kind))
            .collect();
        isolating.is_empty()
            || isolating.iter().any(|p| {
                let rules = p["spec"][side.direction].as_array();
                rules.into_iter().flatten().any(|rule| {
                    self.peer_matches(&rule[side.peers], own, peer)
                        && self.port_matches(&rule["ports"])
                })
            })
    }

    fn peer_matches(&self, peers: &Value, own: &str, peer: &str) -> bool {
        let Some(peers) = peers.as_array() else {
            return true; // no `from`/`to`: every peer
        };
        peers.iter().any(|p| {
            if !p["ipBlock"].is_null() {
                return true;
            }
            match p["namespaceSelector"]["matchLabels"].as_object() {
                Some(labels) => labels
                    .get(NAMESPACE_NAME_LABEL)
                    .is_none_or(|name| name == peer),
                // A peer with a podSelector only is the policy's own namespace.
                None if p["namespaceSelector"].is_null() => peer == own,
                None => true,
            }
        })
    }

    fn port_matches(&self, ports: &Value) -> bool {
        let Some(ports) = ports.as_array() else {
            return true; // no `ports`: every port
        };
        ports.iter().any(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            let first = p["port"].as_u64();
            let last = p["endPort"].as_u64().or(first);
            protocol == self.protocol
                && first.is_none_or(|f| (f..=last.unwrap_or(f)).contains(&u64::from(self.port)))
        })
    }
}

fn types(policy: &Value) -> impl Iterator<Item = &str> {
    policy["spec"]["policyTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}
