//! NAT gateways pending for a while, as AWS's are (about a minute): moto makes them `available`
//! at once. With `Durations::nat_pending_secs` set, a NAT gateway answers `pending` (in its
//! CreateNatGateway response and in DescribeNatGateways) that long after it was created, so the
//! network phase's `ready: false` and the state machine's poll loop run as they would in AWS.
//!
//! A route to a NAT gateway that is not available yet is refused with
//! `InvalidNatGatewayID.NotFound`, as AWS has answered right after CreateNatGateway (so the
//! network phase must not route to one before it is available).
//!
//! EC2 answers in XML; each NAT gateway's `<natGatewayId>` comes before its `<state>` (the
//! members' order in the API model, which moto's serializer follows).

use crate::durations::within;
use crate::proxy::{lock, Gateway};
use bytes::Bytes;
use http::Response;
use std::time::Instant;

/// Adjusts an EC2 response: records the NAT gateway a CreateNatGateway made, and shows the ones
/// still within their pending time as `pending`.
pub fn fix(gw: &Gateway, operation: &str, resp: Response<Bytes>) -> Response<Bytes> {
    let secs = lock(&gw.durations).nat_pending_secs;
    if secs == 0
        || !matches!(operation, "CreateNatGateway" | "DescribeNatGateways")
        || !resp.status().is_success()
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(xml) = std::str::from_utf8(&body) else {
        return Response::from_parts(parts, body);
    };
    let mut created = lock(&gw.nat_created);
    if operation == "CreateNatGateway" {
        for id in ids(xml) {
            created.entry(id).or_insert_with(Instant::now);
        }
    }
    let pending: Vec<String> = ids(xml)
        .into_iter()
        .filter(|id| created.get(id).is_some_and(|t| within(*t, secs)))
        .collect();
    let xml = pending
        .iter()
        .fold(xml.to_owned(), |x, id| as_pending(&x, id));
    Response::from_parts(parts, Bytes::from(xml))
}

/// The refusal of a CreateRoute or ReplaceRoute (form-encoded) to a pending NAT gateway.
pub fn refuse(gw: &Gateway, operation: &str, body: &[u8]) -> Option<Response<Bytes>> {
    let secs = lock(&gw.durations).nat_pending_secs;
    if secs == 0 || !matches!(operation, "CreateRoute" | "ReplaceRoute") {
        return None;
    }
    let (_, id) = form_urlencoded::parse(body).find(|(k, _)| k == "NatGatewayId")?;
    let pending = lock(&gw.nat_created)
        .get(id.as_ref())
        .is_some_and(|t| within(*t, secs));
    pending.then(|| {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>InvalidNatGatewayID.NotFound</Code><Message>The natGateway ID '{id}' does not exist</Message></Error></Errors><RequestID>tenantry-gateway</RequestID></Response>"
        );
        let mut r = Response::new(Bytes::from(xml));
        *r.status_mut() = http::StatusCode::BAD_REQUEST;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/xml"),
        );
        r
    })
}

/// The NAT gateway ids in a response, in order.
fn ids(xml: &str) -> Vec<String> {
    xml.split("<natGatewayId>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</natGatewayId>"))
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// `xml` with NAT gateway `id`'s `available` state turned `pending`.
fn as_pending(xml: &str, id: &str) -> String {
    let tag = format!("<natGatewayId>{id}</natGatewayId>");
    let Some(at) = xml.find(&tag) else {
        return xml.to_owned();
    };
    let after = at + tag.len();
    let item_end = xml[after..]
        .find("<natGatewayId>")
        .map_or(xml.len(), |n| after + n);
    match xml[after..item_end].find("<state>available</state>") {
        Some(n) => {
            let start = after + n;
            format!(
                "{}<state>pending</state>{}",
                &xml[..start],
                &xml[start + "<state>available</state>".len()..]
            )
        }
        None => xml.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "<natGatewaySet><item><natGatewayAddressSet><item><allocationId>eipalloc-1</allocationId></item></natGatewayAddressSet><natGatewayId>nat-1</natGatewayId><state>available</state><subnetId>s-1</subnetId></item><item><natGatewayId>nat-2</natGatewayId><state>available</state></item></natGatewaySet>";

    #[test]
    fn only_the_named_gateway_turns_pending() {
        assert_eq!(ids(TWO), ["nat-1", "nat-2"]);
        let one = as_pending(TWO, "nat-2");
        assert!(one.contains("<natGatewayId>nat-1</natGatewayId><state>available</state>"));
        assert!(one.contains("<natGatewayId>nat-2</natGatewayId><state>pending</state>"));
        let both = as_pending(&one, "nat-1");
        assert_eq!(both.matches("<state>pending</state>").count(), 2);
        assert_eq!(as_pending(TWO, "nat-9"), TWO);
    }
}
