//! The API server's own request counters (`apiserver_request_total`, read through
//! `kubectl get --raw /metrics`), so each scenario can say which requests a client made per
//! Migration: the profile behind a latency or a CPU figure.

use std::collections::BTreeMap;

/// Requests by `VERB resource[/subresource]`.
pub type Counts = BTreeMap<String, f64>;

/// The API server's request counters now; `None` when they cannot be read.
pub async fn request_counts() -> Option<Counts> {
    let output = tokio::process::Command::new("kubectl")
        .args(["get", "--raw", "/metrics"])
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(parse(&String::from_utf8_lossy(&output.stdout)))
}

/// What happened between two readings, per Migration (rounded to 0.01, zeros left out),
/// leaving out long-running watches.
pub fn per_migration(before: &Counts, after: &Counts, migrations: usize) -> Counts {
    after
        .iter()
        .filter(|(key, _)| !key.starts_with("WATCH"))
        .filter_map(|(key, v)| {
            let d = v - before.get(key).copied().unwrap_or_default();
            let per = d / migrations.max(1) as f64;
            let per = (per * 100.0).round() / 100.0;
            (per > 0.0).then(|| (key.clone(), per))
        })
        .collect()
}

/// Sums `apiserver_request_total` by verb, resource and subresource.
fn parse(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (Ok(value), Some(labels)) = (value.parse::<f64>(), labels(series)) else {
            continue;
        };
        let get = |k: &str| labels.get(k).map_or("", String::as_str);
        let mut key = format!("{} {}", get("verb"), get("resource"));
        if !get("subresource").is_empty() {
            key = format!("{key}/{}", get("subresource"));
        }
        *counts.entry(key).or_default() += value;
    }
    counts
}

/// The `key="value"` pairs of one series.
fn labels(series: &str) -> Option<BTreeMap<String, String>> {
    let inner = series.split_once('{')?.1.strip_suffix('}')?;
    let mut out = BTreeMap::new();
    let mut rest = inner;
    while let Some((key, after)) = rest.split_once("=\"") {
        let end = after.find('"')?;
        out.insert(
            key.trim_start_matches(',').to_owned(),
            after[..end].to_owned(),
        );
        rest = &after[end + 1..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE apiserver_request_total counter\n\
        apiserver_request_total{code=\"201\",resource=\"jobs\",subresource=\"\",verb=\"POST\"} 10\n\
        apiserver_request_total{code=\"409\",resource=\"jobs\",subresource=\"\",verb=\"POST\"} 2\n\
        apiserver_request_total{resource=\"migrations\",subresource=\"status\",verb=\"APPLY\"} 4\n\
        apiserver_request_total{code=\"0\",resource=\"jobs\",subresource=\"\",verb=\"WATCH\"} 1\n";

    #[test]
    fn counts_are_summed_by_verb_resource_and_subresource() {
        let c = parse(TEXT);
        assert_eq!(c.get("POST jobs"), Some(&12.0));
        assert_eq!(c.get("APPLY migrations/status"), Some(&4.0));
    }

    #[test]
    fn per_migration_divides_the_growth_and_drops_watches() {
        let before = parse(TEXT);
        let mut after = before.clone();
        *after.entry("POST jobs".into()).or_default() += 4.0;
        *after.entry("WATCH jobs".into()).or_default() += 9.0;
        let per = per_migration(&before, &after, 2);
        assert_eq!(per, Counts::from([("POST jobs".to_owned(), 2.0)]));
    }
}
