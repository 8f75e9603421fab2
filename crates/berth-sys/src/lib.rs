//! Low-level helpers every berth crate needs, each in one place: who a process is (its pid and
//! start time, so a reused pid is never mistaken for the process that left a mark), RFC 3339
//! time, sizes and signal names as Docker and runc read them. Nothing here knows of containers,
//! images or command lines.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod go;
pub mod idmapped;
pub mod keys;
pub mod process;
pub mod root;
pub mod signal;
pub mod time;
pub mod timestamp;
pub mod units;
pub mod userns;
