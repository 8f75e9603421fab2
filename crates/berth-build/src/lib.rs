//! berth's build frontend: everything `berth build` decides before it runs a container. It parses
//! Dockerfiles with BuildKit's semantics, expands variables as BuildKit's shell lexer, plans stages
//! and steps with cache keys and image-config effects, applies `.dockerignore`, and reads build
//! contexts (directories and tars) without ever leaving them. It runs nothing and needs no root.

pub mod context;
pub mod error;
pub mod ignore;
pub mod instructions;
pub mod limits;
pub mod parser;
pub mod plan;
pub mod shell;

pub use error::{BuildError, BuildErrorKind, ParseError, ParseErrorKind};
pub use instructions::{parse, Dockerfile};
pub use limits::Limits;
pub use plan::{plan, BuildOptions, BuildPlan, ImageResolver, Platform};
