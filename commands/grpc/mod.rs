//! The KurrentDB v1 gRPC protocol over the ledger, so that KurrentDB (EventStoreDB) clients in
//! any language read and write Lifeline unchanged: Streams (append, read, subscribe, delete,
//! tombstone, batch append), ServerFeatures and Gossip. It shares `lifeline serve`'s listener
//! with the lifecycle handler and the JSON API (`net`), and its roles with the API (`access`).
//!
//! Persistent subscriptions, projections, users and operations are not served: `List` of
//! persistent subscriptions answers NOT_FOUND (clients call it when tidying up), every other
//! method UNIMPLEMENTED, which clients read as "feature not supported".

// The services' signatures answer with `tonic::Status` (large); the helpers that build
// their answers return it as it is rather than boxing it only to unbox it again.
#![allow(clippy::result_large_err)]

mod batch;
mod cluster;
mod convert;
mod errors;
mod read;
mod streams;

use crate::access::{Access, Role};
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use ledger::Ledger;
use std::sync::Arc;

/// The generated messages and server stubs of `schema/proto/` (module paths follow the
/// packages, as the generated code expects).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    pub mod event_store {
        pub mod client {
            tonic::include_proto!("event_store.client");
            pub mod streams {
                tonic::include_proto!("event_store.client.streams");
            }
            pub mod server_features {
                tonic::include_proto!("event_store.client.server_features");
            }
            pub mod gossip {
                tonic::include_proto!("event_store.client.gossip");
            }
        }
    }
    pub mod google {
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
}

/// The server version reported to clients. Clients switch protocol features on by version
/// (a version without digits fails the Rust client's connection), so this is the KurrentDB
/// protocol level Lifeline speaks, not Lifeline's own version.
pub const PROTOCOL_VERSION: &str = "25.1.0";

/// The largest gRPC message accepted or sent: one event of the ledger's largest size, with
/// room for its envelope (clients accept up to 17 MiB).
pub const MESSAGE_BYTES_MAX: usize = 17 * 1024 * 1024;

/// Bytes of appends held in memory at once across all calls (at least one append of the
/// ledger's largest size); past it, appends are refused as "Server Is Too Busy" rather than
/// made to wait (two large appends each waiting for the other's share would never finish).
pub const IN_FLIGHT_BYTES_MAX: usize = 512 * 1024 * 1024;

/// What the gRPC services share.
pub struct Context {
    pub ledger: Arc<Ledger>,
    pub access: Arc<Access>,
    /// The endpoint Gossip advertises (where clients reach this server).
    pub advertise: (String, u16),
    /// This node's id in Gossip: the same for the same ledger file.
    pub instance: uuid::Uuid,
    /// [`IN_FLIGHT_BYTES_MAX`] in KiB permits.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl Context {
    pub fn new(ledger: Arc<Ledger>, access: Arc<Access>, advertise: (String, u16)) -> Context {
        let path = ledger.path().to_string_lossy().into_owned();
        let hash = blake3::hash(format!("lifeline node\0{path}").as_bytes());
        let bytes: [u8; 16] = hash.as_bytes()[..16].try_into().expect("16 bytes");
        Context {
            ledger,
            access,
            advertise,
            instance: uuid::Builder::from_random_bytes(bytes).into_uuid(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_BYTES_MAX >> 10)),
        }
    }
}

/// The role a call runs with, put in its extensions by [`authenticate`].
#[derive(Clone, Copy, Debug)]
pub struct Caller(pub Role);

/// The gRPC services as routes, for the server's router. Every call is authenticated first.
pub fn router(ctx: Arc<Context>) -> axum::Router {
    use proto::event_store::client::{gossip, server_features, streams as wire};
    let streams = wire::streams_server::StreamsServer::new(streams::Service::new(ctx.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let features =
        server_features::server_features_server::ServerFeaturesServer::new(cluster::Features);
    let gossip = gossip::gossip_server::GossipServer::new(cluster::Gossip(ctx.clone()));
    let access = ctx.access.clone();
    axum::Router::new()
        .route_service(&path(&streams), streams)
        .route_service(&path(&features), features)
        .route_service(&path(&gossip), gossip)
        .layer(axum::middleware::from_fn(move |req, next| {
            authenticate(access.clone(), req, next)
        }))
}

/// The router path of every method of the gRPC service `_`.
pub fn path<S: tonic::server::NamedService>(_: &S) -> String {
    format!("/{}/{{*method}}", S::NAME)
}

/// Resolves the caller's role from `authorization`. With no users or tokens configured (a
/// loopback-only server) everyone is admin and credentials are not looked at (the Rust client
/// sends them even without TLS).
async fn authenticate(
    access: Arc<Access>,
    mut req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let role = if access.is_open() {
        Some(Role::Admin)
    } else {
        match access.role_of(req.headers()) {
            Ok(role) => role,
            Err(_) => {
                return errors::grpc_error(tonic::Status::unauthenticated(
                    "the credentials sent are not known: check the user and password",
                ));
            }
        }
    };
    if let Some(role) = role {
        req.extensions_mut().insert(Caller(role));
    }
    next.run(req).await
}

/// Whether a request is a gRPC call (by its content type).
pub fn is_grpc(req: &Request<Body>) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The answer to a gRPC method Lifeline does not serve.
pub fn not_served(path: &str) -> Response {
    let status =
        if path == "/event_store.client.persistent_subscriptions.PersistentSubscriptions/List" {
            tonic::Status::not_found("no persistent subscriptions: Lifeline does not serve them")
        } else {
            tonic::Status::unimplemented(format!("{path} is not served by Lifeline"))
        };
    errors::grpc_error(status)
}

/// The answer to a call over its address's rate limit (KurrentDB's words for it; clients retry).
pub fn too_busy() -> Response {
    errors::grpc_error(tonic::Status::unavailable(
        "Server Is Too Busy: too many requests from this address",
    ))
}
