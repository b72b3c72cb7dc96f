//! The admission policy that keeps every `type: LoadBalancer` Service with the AWS Load Balancer
//! Controller, installed with the controller.
//!
//! The controller's Service mutator gives a LoadBalancer Service its class
//! (`service.k8s.aws/nlb`), but only on CREATE, and it skips objects labelled as the controller
//! itself. A Service that becomes a LoadBalancer by an UPDATE (a tenant owner may update
//! Services), or one created with the controller's label, would keep no class. The legacy cloud
//! provider, which every EKS cluster still runs, then builds it a Classic Load Balancer: outside
//! the controller's security groups, target types and TLS policies, and outside the tenant's
//! `services.loadbalancers` quota's intent.
//!
//! A `ValidatingAdmissionPolicy` (GA since Kubernetes 1.30; Tenantry supports 1.32 and later)
//! refuses, on create and on update, any LoadBalancer Service whose `spec.loadBalancerClass` is
//! not the controller's. Validating admission runs after mutation, so a create that the mutator
//! classed passes. It is evaluated by the API server itself: no webhook, nothing to be down.

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyBindingSpec,
    ValidatingAdmissionPolicySpec, Validation,
};
use serde_json::Value;

use super::alb_controller::ALB_NAME;
use super::manifests::{meta, to_value};
use crate::spec::PlatformSpec;

/// The class the controller serves (its `--load-balancer-class` default), which its Service
/// mutator sets.
pub const LOAD_BALANCER_CLASS: &str = "service.k8s.aws/nlb";
/// Name of the policy and of its binding.
pub const LOAD_BALANCER_CLASS_POLICY: &str = "tenantry-load-balancer-class";

/// Labelled like the controller's other objects: installed and removed with it.
const PART_OF_THE_CONTROLLER: &[(&str, &str)] = &[("app.kubernetes.io/name", ALB_NAME)];

/// Selects the Services the policy judges.
pub(crate) const MATCH_LOAD_BALANCERS: &str = "object.spec.type == 'LoadBalancer'";
/// What a judged Service must satisfy.
pub(crate) const HAS_CONTROLLER_CLASS: &str =
    "has(object.spec.loadBalancerClass) && object.spec.loadBalancerClass == 'service.k8s.aws/nlb'";

/// The policy and its binding (deny, every namespace), in apply order.
pub fn load_balancer_class_manifests(spec: &PlatformSpec) -> [Value; 2] {
    let strings = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let policy = ValidatingAdmissionPolicy {
        metadata: meta(
            spec,
            LOAD_BALANCER_CLASS_POLICY,
            None,
            PART_OF_THE_CONTROLLER,
        ),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(strings(&[""])),
                    api_versions: Some(strings(&["v1"])),
                    operations: Some(strings(&["CREATE", "UPDATE"])),
                    resources: Some(strings(&["services"])),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            match_conditions: Some(vec![MatchCondition {
                name: "load-balancer-services".to_owned(),
                expression: MATCH_LOAD_BALANCERS.to_owned(),
            }]),
            validations: Some(vec![Validation {
                expression: HAS_CONTROLLER_CLASS.to_owned(),
                message: Some(format!(
                    "a Service of type LoadBalancer needs spec.loadBalancerClass \
                     '{LOAD_BALANCER_CLASS}' (the AWS Load Balancer Controller's): without it the \
                     legacy cloud provider would build a Classic Load Balancer. Set it in the same \
                     request that changes the type to LoadBalancer."
                )),
                reason: Some("Forbidden".to_owned()),
                ..Validation::default()
            }]),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        ..ValidatingAdmissionPolicy::default()
    };
    let binding = ValidatingAdmissionPolicyBinding {
        metadata: meta(
            spec,
            LOAD_BALANCER_CLASS_POLICY,
            None,
            PART_OF_THE_CONTROLLER,
        ),
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(LOAD_BALANCER_CLASS_POLICY.to_owned()),
            validation_actions: Some(strings(&["Deny"])),
            ..ValidatingAdmissionPolicyBindingSpec::default()
        }),
    };
    [to_value(&policy), to_value(&binding)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example};

    /// Evaluates `expression` on `object` with a CEL interpreter, as the API server does.
    fn cel(expression: &str, object: &Value) -> bool {
        let mut context = cel_interpreter::Context::default();
        context
            .add_variable("object", object.clone())
            .expect("object");
        let program = cel_interpreter::Program::compile(expression).expect("valid CEL");
        program.execute(&context).expect("evaluates") == true.into()
    }

    /// Whether the API server admits `object`: judged only when every match condition holds,
    /// then refused unless every validation holds.
    fn admitted(policy: &Value, object: &Value) -> bool {
        let all = |key: &str| {
            policy["spec"][key]
                .as_array()
                .expect(key)
                .iter()
                .all(|c| cel(c["expression"].as_str().expect("expression"), object))
        };
        !all("matchConditions") || all("validations")
    }

    fn service(spec: Value) -> Value {
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "web", "namespace": "team-a" }, "spec": spec })
    }

    #[test]
    fn a_load_balancer_without_the_controllers_class_is_refused() {
        let [policy, binding] = load_balancer_class_manifests(&example());
        // What the mutator makes of a create, or an update that sets the class: admitted.
        let classed = service(json!({ "type": "LoadBalancer",
                                      "loadBalancerClass": LOAD_BALANCER_CLASS }));
        assert!(admitted(&policy, &classed));
        // ClusterIP → LoadBalancer by an update (the mutator sees only creates), or a create
        // labelled as the controller (the mutator skips those): the legacy provider's CLB.
        assert!(!admitted(
            &policy,
            &service(json!({ "type": "LoadBalancer" }))
        ));
        // A class nothing in the cluster serves: a load balancer that never comes.
        let other =
            service(json!({ "type": "LoadBalancer", "loadBalancerClass": "example.com/lb" }));
        assert!(!admitted(&policy, &other));
        // Services that are not load balancers are not judged (the API server defaults `type`
        // before admission, so every Service has one).
        for kind in ["ClusterIP", "NodePort", "ExternalName"] {
            assert!(
                admitted(&policy, &service(json!({ "type": kind }))),
                "{kind}"
            );
        }
        // On create and update of Services, denying, in every namespace, failing closed.
        let rules = &policy["spec"]["matchConstraints"]["resourceRules"][0];
        assert_eq!(rules["resources"], json!(["services"]));
        assert_eq!(rules["operations"], json!(["CREATE", "UPDATE"]));
        assert_eq!(policy["spec"]["failurePolicy"], "Fail");
        assert_eq!(binding["spec"]["policyName"], LOAD_BALANCER_CLASS_POLICY);
        assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
        assert!(binding["spec"].get("matchResources").is_none());
        for object in [&policy, &binding] {
            assert_eq!(object["apiVersion"], "admissionregistration.k8s.io/v1");
            assert_common_labels(object, "payments");
            assert_eq!(
                object["metadata"]["labels"]["app.kubernetes.io/name"],
                ALB_NAME
            );
        }
        let message = policy["spec"]["validations"][0]["message"]
            .as_str()
            .unwrap();
        assert!(
            message.contains("spec.loadBalancerClass") && message.contains(LOAD_BALANCER_CLASS)
        );
    }
}
