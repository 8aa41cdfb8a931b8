//! Termination messages: the file at `terminationMessagePath`, or the log's tail for
//! `FallbackToLogsOnError`, within the kubelet's limits.

use std::path::Path;

use k8s_openapi::api::core::v1::Container;

const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_FALLBACK_BYTES: usize = 2048;
const MAX_FALLBACK_LINES: usize = 80;

/// The message for a run that ended with `code`.
pub fn termination_message(
    c: &Container,
    file: &Path,
    log: &Path,
    log_start: u64,
    code: i32,
) -> Option<String> {
    let from_file = std::fs::read(file).unwrap_or_default();
    let message = truncate(&from_file, MAX_MESSAGE_BYTES);
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if message.trim().is_empty() && fallback && code != 0 {
        let text = std::fs::read(log).unwrap_or_default();
        let run = text
            .get(usize::try_from(log_start).unwrap_or(0)..)
            .unwrap_or_default();
        return Some(log_tail(run)).filter(|t| !t.is_empty());
    }
    Some(message).filter(|m| !m.is_empty())
}

fn truncate(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// The last 80 lines of a run's log, at most 2048 bytes, as the kubelet's fallback.
pub fn log_tail(log: &[u8]) -> String {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(MAX_FALLBACK_LINES)..].join("\n");
    let start = tail.len().saturating_sub(MAX_FALLBACK_BYTES);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_eighty_lines() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(log.as_bytes());
        assert!(tail.starts_with("line 20\n"), "{tail}");
        assert!(tail.ends_with("line 99"));
    }

    #[test]
    fn log_tail_is_at_most_2048_bytes() {
        let log = "é".repeat(3000);
        let tail = log_tail(log.as_bytes());
        assert!(tail.len() <= 2048);
        assert!(tail.chars().all(|c| c == 'é'));
    }
}
