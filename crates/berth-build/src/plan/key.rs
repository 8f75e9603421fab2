//! Cache keys: `key(n) = H(key(n-1), component(n), content(n))`, every field length-prefixed so no
//! two different inputs hash alike. A stage starts from its base's key (an image's ID, scratch, or
//! another stage's last key); metadata-only steps leave the chain alone (their effect reaches the
//! next keyed step through its component: environment, working directory, user).

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest (content hashes and cache keys), shown as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", &self.hex()[..12])
    }
}

/// The version of the key scheme: bump it when a component's format changes.
const SCHEME: &[u8] = b"berth-build cache v1";

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A cache key.
pub type CacheKey = Digest;

/// The key a stage on `scratch` starts from.
pub fn scratch_key() -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, SCHEME);
    field(&mut h, b"scratch");
    Digest(h.finalize().into())
}

/// The key a stage on an image starts from: its image ID (config digest) and platform.
pub fn image_key(image_id: &str, platform: &str) -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, SCHEME);
    field(&mut h, b"image");
    field(&mut h, image_id.as_bytes());
    field(&mut h, platform.as_bytes());
    Digest(h.finalize().into())
}

/// The key of a step: its parent's key, its component (`Step::key_component`) and, for steps that
/// read files (COPY/ADD, RUN with mounts from stages), the digest of what they read.
pub fn chain_key(parent: &CacheKey, component: &str, content: Option<&Digest>) -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, SCHEME);
    field(&mut h, &parent.0);
    field(&mut h, component.as_bytes());
    match content {
        Some(d) => field(&mut h, &d.0),
        None => field(&mut h, b""),
    }
    Digest(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_input() {
        let base = image_key("sha256:aa", "linux/amd64");
        assert_ne!(base, image_key("sha256:aa", "linux/arm64"));
        assert_ne!(base, scratch_key());
        let c = Digest::of(b"x");
        let k = chain_key(&base, "RUN a", Some(&c));
        assert_eq!(k, chain_key(&base, "RUN a", Some(&Digest::of(b"x"))));
        assert_ne!(k, chain_key(&base, "RUN a", Some(&Digest::of(b"y"))));
        assert_ne!(k, chain_key(&base, "RUN b", Some(&c)));
        assert_ne!(k, chain_key(&scratch_key(), "RUN a", Some(&c)));
        assert_ne!(chain_key(&base, "RUN a", None), k);
        assert!(k.to_string().starts_with("sha256:"));
    }
}
