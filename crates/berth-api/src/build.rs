//! The build seam: `POST /build` (a context tarball in, Docker's JSON stream of the build's
//! output out) lands with issue 14's engine module `build/`. Until then it answers 501 with a
//! message, after reading (and bounding) nothing of the context. When the engine gains
//! `Engine::build`, `build` below streams the body to it as a `BodyReader` (as `load` does) and
//! its output through `progress::JsonProgress`-style lines (`{"stream": "Step 1/3 : …\n"}`,
//! `{"aux": {"ID": "sha256:…"}}`, `{"errorDetail": …}`).

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use hyper::StatusCode;
use std::sync::Arc;

/// `POST /build`: the seam for issue 14 (see the module's comment).
pub async fn build(_app: &Arc<App>, _q: &Query, _req: Req) -> ApiResult<Resp> {
    Err(ApiError::NotImplemented(
        "image build is not available through berth serve yet (it lands with berth's build engine)"
            .into(),
    ))
}

/// `POST /build/prune`: there is no build cache yet, so nothing to free.
pub fn prune() -> Resp {
    http::json(
        StatusCode::OK,
        &serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
    )
}
