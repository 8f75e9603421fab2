//! Generated container names (`brave_lovelace`), and random IDs from the kernel.

use std::io::Read;

const ADJECTIVES: [&str; 24] = [
    "agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "jolly",
    "keen", "kind", "lucid", "merry", "nimble", "proud", "quick", "quiet", "sharp", "steady",
    "swift", "tidy", "vivid", "wise",
];
const NOUNS: [&str; 24] = [
    "babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper", "hypatia", "kepler",
    "knuth", "lamport", "lovelace", "maxwell", "newton", "noether", "pascal", "ritchie", "shannon",
    "tesla", "thompson", "torvalds", "turing", "wozniak", "yalow",
];

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b
}

/// A 64-hex-digit container ID.
pub fn new_id() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `adjective_noun`, with a digit appended by the caller on a clash.
pub fn random_name() -> String {
    let b = random_bytes::<2>();
    format!(
        "{}_{}",
        ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
        NOUNS[b[1] as usize % NOUNS.len()]
    )
}
