//! A minimal HTTP/1.0 GET over loopback for `/healthz`, `/readyz` and `/metrics`, and the
//! reading of counters from the Prometheus text format.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on one request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Status code and body of `GET path`. HTTP/1.0 keeps the body unchunked and ends it at close.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))??;
    parse_response(&String::from_utf8_lossy(&raw))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP response"))
}

/// Splits a response into its status code and body.
fn parse_response(text: &str) -> Option<(u16, String)> {
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((code, body.to_owned()))
}

/// Which counter families count reconciles.
#[derive(Debug, Clone)]
pub enum ReconcileMetric {
    /// Exactly this sample name (for example `datamigrate_reconciles_total`).
    Named(String),
    /// Any `*_total` counter whose name mentions reconciles but not failures or errors.
    Guess,
}

impl ReconcileMetric {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Named(want) => name == want,
            Self::Guess => {
                name.ends_with("_total")
                    && name.contains("reconcil")
                    && !name.contains("fail")
                    && !name.contains("error")
            }
        }
    }
}

/// Sum of every matching sample, and the sample names that were summed; `None` when no
/// sample matched.
pub fn sum_counter(text: &str, metric: &ReconcileMetric) -> Option<(f64, Vec<String>)> {
    let mut total = 0.0;
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or_default();
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if metric.matches(name) {
            total += value;
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    (!names.is_empty()).then_some((total, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP datamigrate_reconciles_total Reconciles.\n\
        # TYPE datamigrate_reconciles_total counter\n\
        datamigrate_reconciles_total{result=\"ok\"} 12\n\
        datamigrate_reconciles_total{result=\"error\"} 3\n\
        datamigrate_reconcile_failures_total{reason=\"InvalidSpec\"} 3\n\
        datamigrate_reconcile_duration_seconds_count 15\n";

    #[test]
    fn guess_sums_reconcile_counters_but_not_failures() {
        let (total, names) = sum_counter(METRICS, &ReconcileMetric::Guess).unwrap();
        assert_eq!(total, 15.0);
        assert_eq!(names, vec!["datamigrate_reconciles_total".to_owned()]);
    }

    #[test]
    fn named_metric_reads_only_that_family() {
        let metric = ReconcileMetric::Named("datamigrate_reconcile_duration_seconds_count".into());
        assert_eq!(sum_counter(METRICS, &metric).unwrap().0, 15.0);
        assert!(sum_counter("up 1\n", &ReconcileMetric::Guess).is_none());
    }

    #[test]
    fn response_splits_code_and_body() {
        let (code, body) =
            parse_response("HTTP/1.0 503 Service Unavailable\r\nA: b\r\n\r\nno").unwrap();
        assert_eq!((code, body.as_str()), (503, "no"));
    }
}
