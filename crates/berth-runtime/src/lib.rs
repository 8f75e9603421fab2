//! berth runtime library
