//! The cluster security group EKS creates with every cluster, which moto's EKS does not.
//!
//! In AWS, `CreateCluster` creates a security group `eks-cluster-sg-<cluster>-<suffix>` in the
//! cluster's VPC (tagged `kubernetes.io/cluster/<cluster>: owned`), reports it as
//! `resourcesVpcConfig.clusterSecurityGroupId`, gives it to managed nodes without their own, and
//! deletes it with the cluster. The gateway does the same in moto's EC2, with its own uncounted
//! calls, so that what Tenantry derives from it (custom networking's `ENIConfig`s) names a real
//! group in the right VPC, and decommission still finds an empty VPC.

use axum::body::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::proxy::{forward, AwsRequest, Gateway};

/// Headers for the gateway's own EC2 query calls to moto, in `req`'s region and account.
fn ec2_headers(gw: &Gateway, req: &AwsRequest) -> HeaderMap {
    let region = req.region(gw);
    let mut h = HeaderMap::new();
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=tenantrygateway/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"
    );
    if let Ok(v) = HeaderValue::from_str(&auth) {
        h.insert("authorization", v);
    }
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    crate::accounts::in_account(h, &req.account(gw))
}

/// One EC2 query call in the account and region of `req` (the EKS call that causes it); the
/// answer's XML on success.
async fn ec2(gw: &Gateway, req: &AwsRequest, params: &[(&str, &str)]) -> Option<String> {
    let body: String = params
        .iter()
        .chain([("Version", "2016-11-15")].iter())
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let resp = forward(
        gw,
        &Method::POST,
        "/",
        &ec2_headers(gw, req),
        Bytes::from(body),
    )
    .await;
    (resp.status() == StatusCode::OK).then(|| String::from_utf8_lossy(resp.body()).into_owned())
}

/// The text of the first `<tag>` element (of moto's query answers).
pub(crate) fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

/// Creates the cluster security group in the VPC of `subnet_id`; its id.
pub async fn create(
    gw: &Gateway,
    req: &AwsRequest,
    cluster: &str,
    subnet_id: &str,
) -> Option<String> {
    let subnets = ec2(
        gw,
        req,
        &[("Action", "DescribeSubnets"), ("SubnetId.1", subnet_id)],
    )
    .await?;
    let vpc = element(&subnets, "vpcId")?.to_owned();
    let name = format!("eks-cluster-sg-{cluster}-{}", crate::eks::random_id(10));
    let tag = format!("kubernetes.io/cluster/{cluster}");
    let created = ec2(
        gw,
        req,
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", &name),
            (
                "GroupDescription",
                "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
            ),
            ("VpcId", &vpc),
            ("TagSpecification.1.ResourceType", "security-group"),
            ("TagSpecification.1.Tag.1.Key", &tag),
            ("TagSpecification.1.Tag.1.Value", "owned"),
        ],
    )
    .await?;
    element(&created, "groupId").map(str::to_owned)
}

/// Deletes the cluster security group (with its cluster).
pub async fn delete(gw: &Gateway, req: &AwsRequest, group_id: &str) {
    let _ = ec2(
        gw,
        req,
        &[("Action", "DeleteSecurityGroup"), ("GroupId", group_id)],
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_read_from_query_answers() {
        let xml = "<r><subnetSet><item><vpcId>vpc-123</vpcId></item></subnetSet></r>";
        assert_eq!(element(xml, "vpcId"), Some("vpc-123"));
        assert_eq!(element(xml, "groupId"), None);
    }
}
