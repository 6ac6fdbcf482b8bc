//! ServerFeatures (what this server implements) and Gossip (one node: the leader, here).

use super::proto::event_store::client::gossip::{
    self, member_info, ClusterInfo, EndPoint, MemberInfo,
};
use super::proto::event_store::client::server_features::{self, SupportedMethod, SupportedMethods};
use super::proto::event_store::client::Empty;
use super::{Context, PROTOCOL_VERSION};
use std::sync::Arc;
use tonic::{Request, Response, Status};

const STREAMS: &str = "event_store.client.streams.streams";

/// Every method served, lower-cased as KurrentDB lists them, with the features clients check.
pub fn methods() -> Vec<SupportedMethod> {
    let m = |service: &str, method: &str, features: &[&str]| SupportedMethod {
        method_name: method.into(),
        service_name: service.into(),
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    };
    vec![
        m(STREAMS, "read", &["position", "events"]),
        m(STREAMS, "append", &[]),
        m(STREAMS, "delete", &[]),
        m(STREAMS, "tombstone", &[]),
        m(STREAMS, "batchappend", &["deadline_duration"]),
        m(
            "event_store.client.server_features.serverfeatures",
            "getsupportedmethods",
            &[],
        ),
        m("event_store.client.gossip.gossip", "read", &[]),
    ]
}

pub struct Features;

#[tonic::async_trait]
impl server_features::server_features_server::ServerFeatures for Features {
    async fn get_supported_methods(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        Ok(Response::new(SupportedMethods {
            methods: methods(),
            event_store_server_version: PROTOCOL_VERSION.into(),
        }))
    }
}

pub struct Gossip(pub Arc<Context>);

#[tonic::async_trait]
impl gossip::gossip_server::Gossip for Gossip {
    async fn read(&self, _: Request<Empty>) -> Result<Response<ClusterInfo>, Status> {
        let (address, port) = self.0.advertise.clone();
        let now_ticks = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| (d.as_nanos() / 100) as i64);
        Ok(Response::new(ClusterInfo {
            members: vec![MemberInfo {
                instance_id: Some(super::convert::uuid_to(self.0.instance, false)),
                time_stamp: now_ticks,
                state: member_info::VNodeState::Leader as i32,
                is_alive: true,
                http_end_point: Some(EndPoint {
                    address,
                    port: u32::from(port),
                }),
            }],
        }))
    }
}
