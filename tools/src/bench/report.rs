//! The tables `moodb bench` prints: one row per run, as a Markdown table so it can be pasted
//! into documents, plus throughput ratios when several targets ran.

use std::time::Duration;

use super::runner::RunResult;

/// One line of the workload table.
#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub workload: String,
    pub sync: String,
    pub clients: usize,
    pub ops: u64,
    pub elapsed: Duration,
    pub ops_per_sec: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    /// Syncs the backend did during the run (unknown over RESP).
    pub fsyncs: Option<u64>,
    /// Time spent in those syncs.
    pub fsync_time: Option<Duration>,
    /// Records appended during the run (unknown over RESP).
    pub records: Option<u64>,
}

impl Row {
    pub fn new(target: &str, workload: &str, sync: &str, clients: usize, run: &RunResult) -> Self {
        Row {
            target: target.to_string(),
            workload: workload.to_string(),
            sync: sync.to_string(),
            clients,
            ops: run.ops,
            elapsed: run.elapsed,
            ops_per_sec: run.ops_per_sec(),
            p50_ns: run.latency.value_at_quantile(0.50),
            p99_ns: run.latency.value_at_quantile(0.99),
            p999_ns: run.latency.value_at_quantile(0.999),
            fsyncs: None,
            fsync_time: None,
            records: None,
        }
    }
}

/// Renders the workload table, then one ratio line per target after the first.
pub fn workload_table(rows: &[Row]) -> String {
    let headers = [
        "target",
        "workload",
        "sync",
        "clients",
        "ops",
        "secs",
        "ops/s",
        "p50",
        "p99",
        "p99.9",
        "fsyncs",
        "fsync avg",
        "writes/fsync",
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.target.clone(),
                r.workload.clone(),
                r.sync.clone(),
                r.clients.to_string(),
                r.ops.to_string(),
                format!("{:.2}", r.elapsed.as_secs_f64()),
                format!("{:.0}", r.ops_per_sec),
                latency(r.p50_ns),
                latency(r.p99_ns),
                latency(r.p999_ns),
                r.fsyncs.map_or("-".into(), |f| f.to_string()),
                match (r.fsync_time, r.fsyncs) {
                    (Some(time), Some(fsyncs)) if fsyncs > 0 => {
                        latency((time.as_nanos() / u128::from(fsyncs)) as u64)
                    }
                    _ => "-".into(),
                },
                match (r.records, r.fsyncs) {
                    (Some(records), Some(fsyncs)) if fsyncs > 0 => {
                        format!("{:.1}", records as f64 / fsyncs as f64)
                    }
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut out = table(&headers, cells);
    if let Some((first, rest)) = rows.split_first() {
        for row in rest {
            out.push_str(&format!(
                "ops/s ratio {} / {}: {:.2}x\n",
                row.target,
                first.target,
                row.ops_per_sec / first.ops_per_sec.max(1e-9)
            ));
        }
    }
    out
}

/// One line of the recovery table.
#[derive(Debug, Clone)]
pub struct RecoveryRow {
    pub backend: String,
    pub keys: u64,
    pub value_size: usize,
    pub fill: Duration,
    /// Whether a checkpoint was written after the fill (false when the backend has none).
    pub checkpointed: bool,
    pub disk_bytes: u64,
    pub recover: Duration,
}

/// Renders the recovery table, then recovery-time ratios against the first backend.
pub fn recovery_table(rows: &[RecoveryRow]) -> String {
    let headers = [
        "backend",
        "keys",
        "value B",
        "fill secs",
        "checkpoint",
        "disk MB",
        "B/key",
        "recover secs",
        "keys/s",
        "MB/s",
    ];
    let cells = rows
        .iter()
        .map(|r| {
            let secs = r.recover.as_secs_f64().max(1e-9);
            let mb = r.disk_bytes as f64 / 1e6;
            vec![
                r.backend.clone(),
                r.keys.to_string(),
                r.value_size.to_string(),
                format!("{:.2}", r.fill.as_secs_f64()),
                if r.checkpointed { "yes" } else { "no" }.to_string(),
                format!("{mb:.1}"),
                format!("{:.0}", r.disk_bytes as f64 / r.keys.max(1) as f64),
                format!("{:.3}", r.recover.as_secs_f64()),
                format!("{:.0}", r.keys as f64 / secs),
                format!("{:.1}", mb / secs),
            ]
        })
        .collect();
    let mut out = table(&headers, cells);
    if let Some((first, rest)) = rows.split_first() {
        for row in rest {
            out.push_str(&format!(
                "recovery time ratio {} / {}: {:.2}x\n",
                row.backend,
                first.backend,
                row.recover.as_secs_f64() / first.recover.as_secs_f64().max(1e-9)
            ));
        }
    }
    out
}

/// A latency in the unit that keeps it readable: `850ns`, `182us`, `1.25ms`, `2.10s`.
pub fn latency(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}us", ns / 1_000),
        1_000_000..=999_999_999 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// A Markdown table with columns padded to their widest cell.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::from("|");
        for (cell, width) in cells.zip(&widths) {
            out.push_str(&format!(" {cell:>width$} |"));
        }
        out.push('\n');
        out
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('|');
    for width in &widths {
        out.push_str(&format!("{}:|", "-".repeat(width + 1)));
    }
    out.push('\n');
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_use_a_readable_unit() {
        assert_eq!(latency(850), "850ns");
        assert_eq!(latency(182_400), "182us");
        assert_eq!(latency(1_250_000), "1.25ms");
        assert_eq!(latency(2_100_000_000), "2.10s");
    }

    #[test]
    fn tables_align_columns_and_print_ratios() {
        let row = |target: &str, ops_per_sec: f64| Row {
            target: target.into(),
            workload: "write".into(),
            sync: "always".into(),
            clients: 4,
            ops: 1000,
            elapsed: Duration::from_millis(500),
            ops_per_sec,
            p50_ns: 100_000,
            p99_ns: 900_000,
            p999_ns: 2_000_000,
            fsyncs: Some(250),
            fsync_time: Some(Duration::from_millis(25)),
            records: Some(1000),
        };
        let out = workload_table(&[row("paper", 2000.0), row("sled", 1000.0)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(
            lines[..4].iter().all(|l| l.len() == lines[0].len()),
            "{out}"
        );
        let cells: Vec<&str> = lines[2].split('|').map(str::trim).collect();
        assert_eq!(cells[11..14], ["250", "100us", "4.0"], "{out}");
        assert_eq!(lines[4], "ops/s ratio sled / paper: 0.50x");
    }
}
