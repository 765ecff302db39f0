//! The PBX engine. So far: SIP transports (UDP, TCP), the registrar with its location service
//! and group-committed persistence, behind [`SipService`]; and the sans-IO B2BUA call engine
//! ([`call`]), tested on the in-memory network but not yet driven by the service.

pub mod call;
pub mod cdr;
pub mod dialplan;
pub mod location;
pub mod media_driver;
pub mod registrar;
pub mod server;
pub mod transport;
pub mod trunks;

pub use location::{Binding, LocationService};
pub use registrar::persist::PersistConfig;
pub use registrar::{ChallengeAlgorithms, RegistrarConfig};
pub use server::{
    CallsConfig, CallsView, Error, LocalAddrs, SipConfig, SipService, SipServiceHandle,
};
pub use transport::tcp::TcpConfig;
pub use transport::{ConnId, Flow, Outbound, SendError, TransportKind};
