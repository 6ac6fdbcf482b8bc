//! `projections`: the Connections domain. Lifecycle events (`events`), the states they fold into
//! (`state`, `fold`), and the checks a new event must pass against the intended state
//! (`validate`). Pure: no files, no sockets, no clock — time and positions come in with the
//! events.

mod cache;
pub mod converge;
pub mod describe;
pub mod events;
pub mod findings;
pub mod fold;
pub mod lifecycle;
pub mod parallel;
pub mod plan;
pub mod queue;
pub mod reach;
pub mod repair;
mod shared;
pub mod simulate;
pub mod snapshot;
pub mod state;
pub mod validate;
pub mod view;
pub mod vocabulary;
pub mod wsadmin;

pub use events::{decode, DecodeError, DomainEvent};
pub use fold::{failures, Failures, Recorded, World};
pub use queue::Queue;
pub use state::{Backup, Community, DbState, Deployment, Mirror, QueueEntry, Resource};
pub use vocabulary::{App, CommunityType, Database, Lifecycle, Role};
