//! Bounds on the work a Dockerfile and a build context may cause. Every limit is checked where the
//! input is read, so hostile input fails with a named error instead of exhausting memory or time.

/// Bounds on parsing and planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Size of the Dockerfile.
    pub max_dockerfile_bytes: usize,
    /// One physical line (BuildKit's scanner stops at 64 KiB as well).
    pub max_line_bytes: usize,
    /// One heredoc's content.
    pub max_heredoc_bytes: usize,
    /// Logical instructions in the file.
    pub max_instructions: usize,
    /// One expanded word.
    pub max_word_bytes: usize,
    /// All expansion output of one plan together (no exponential growth through ENV chains).
    pub max_total_expansion_bytes: usize,
    /// Pattern-matching steps for one word (`${V#…}`, `${V/…}`).
    pub max_pattern_work: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_dockerfile_bytes: 8 << 20,
            max_line_bytes: 65535,
            max_heredoc_bytes: 4 << 20,
            max_instructions: 20_000,
            max_word_bytes: crate::shell::DEFAULT_MAX_WORD,
            max_total_expansion_bytes: 256 << 20,
            max_pattern_work: crate::shell::DEFAULT_MAX_WORK,
        }
    }
}
