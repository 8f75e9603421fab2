//! berth's build frontend: everything `berth build` decides before it runs a container. It parses
//! Dockerfiles with BuildKit's semantics, expands variables as BuildKit's shell lexer, plans stages
//! and steps with cache keys and image-config effects, applies `.dockerignore`, and reads build
//! contexts (directories and tars) without ever leaving them. It runs nothing and needs no root.
//!
//! How an executor drives it:
//!
//! ```no_run
//! use berth_build::context::Context;
//! use berth_build::plan::{chain_key, plan, Action, Base, BuildOptions, ImageResolver, Source};
//! # fn run(resolver: &mut dyn ImageResolver) -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("ctx");
//! let df = berth_build::parse(&std::fs::read(dir.join("Dockerfile"))?)?; // errors: "Dockerfile:7: …"
//! let p = plan(&df, &BuildOptions::default(), resolver)?; // asks for base image configs
//! let ctx = Context::open(dir, None)?; // walked once, .dockerignore applied
//! let mut finals = std::collections::BTreeMap::new();
//! for stage in &p.stages {
//!     // stages of one `p.levels` entry may run in parallel
//!     let base = match stage.base { Base::Stage(i) => finals.get(&i), _ => None };
//!     let mut key = stage.base_key(base).unwrap();
//!     for step in &stage.steps {
//!         if let Some(component) = &step.key_component {
//!             let content = match &step.action {
//!                 Action::Copy(c) if c.from == Source::Context => Some(ctx.content_digest(c)?),
//!                 _ => None, // COPY --from=stage: that stage's final key; RUN: None
//!             };
//!             key = chain_key(&key, component, content.as_ref());
//!             // cache hit on `key`, or run the action (RUN in a container, COPY with
//!             // `ctx.copy_sources`, Mkdir) and commit a layer; then
//!         }
//!         // apply `step.config_change` to the image config, record `step.created_by`.
//!     }
//!     finals.insert(stage.index, key);
//! }
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

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
