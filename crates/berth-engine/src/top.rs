//! `top`: the processes of a running container as `ps` shows them (`-ef` unless told), filtered
//! to the container's pids, split into Docker's titles and rows. Runs `ps`; changes nothing.

use crate::error::{EngineError, Result};
use crate::Engine;
use serde::Serialize;

/// Docker's `container.TopResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// The processes of the running container `what`, with `ps_args` (default `-ef`).
    pub fn top(&self, what: &str, ps_args: &[String]) -> Result<Top> {
        let pids = self.pids(what)?;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| EngineError::io("ps", e))?;
        if !out.status.success() {
            return Err(EngineError::msg(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Titles from the header; rows whose PID column is one of `pids`, the last column taking the
/// rest of the line (a command with spaces).
fn parse_ps(text: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::msg("Couldn't find PID field in ps output"))?;
    let n = titles.len();
    let processes = lines
        .filter_map(|l| {
            let mut fields: Vec<String> = Vec::with_capacity(n);
            let mut rest = l.trim_start();
            while fields.len() + 1 < n {
                let end = rest.find(char::is_whitespace)?;
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            fields.push(rest.to_string());
            let pid: i32 = fields.get(pid_col)?.parse().ok()?;
            pids.contains(&pid).then_some(fields)
        })
        .collect();
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_keep_the_command_whole_and_only_the_containers_pids() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sh -c sleep 5\nroot 11 1 0 10:00 ? 00:00:00 other\n";
        let t = super::parse_ps(text, &[10]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
            vec![vec![
                "root",
                "10",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sh -c sleep 5"
            ]]
        );
    }
}
