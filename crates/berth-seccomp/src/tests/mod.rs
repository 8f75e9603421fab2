//! Tests of compiled programs, run on a small classic-BPF interpreter rather than the
//! kernel, so every arch and argument path can be checked without root.

mod docker;
mod rules;
mod sim;
