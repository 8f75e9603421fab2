//! berth's image layer: blobs by digest, the registry client, safe layer unpacking, the layer store
//! and overlay snapshots. It hands callers lists of mounts and never runs a process.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod archive;
pub mod content;
pub mod digest;
pub mod gojson;
pub mod images;
pub mod layers;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod staging;
pub mod store;
pub mod tarfmt;
pub mod tree;
pub mod unpack;
