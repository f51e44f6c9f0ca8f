//! `sys/metrics`' two forms: Prometheus' text format, and Vault's JSON
//! (`Gauges`, `Counters`, `Samples`), built from the same series.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{Telemetry, metrics};

/// The values read when the metrics are rendered (states, not events).
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// The `cluster` label of Vault's core gauges (`cluster_name`).
    pub cluster: String,
    pub unsealed: bool,
    /// `Unsealed::auto_rotations`: versions added by automatic rotation
    /// on this node since unseal.
    pub auto_rotations: u64,
    /// Keyrings held in the mounts' caches.
    pub cached_keys: usize,
    /// Audit devices enabled, and those failing now.
    pub audit_devices: usize,
    pub failing_audit_devices: usize,
}

/// The Prometheus text exposition (format 0.0.4).
pub fn prometheus(telemetry: &Telemetry, gauges: &Gauges) -> String {
    let mut out = metrics().render_recorded();
    let vault = telemetry.gauge_prefix();
    let cluster = escape(&gauges.cluster);
    let mut gauge = |name: &str, labels: &str, value: f64| {
        let _ = writeln!(out, "# TYPE {name} gauge\n{name}{labels} {value}");
    };
    let by_cluster = format!("{{cluster=\"{cluster}\"}}");
    gauge(
        &format!("{vault}core_unsealed"),
        &by_cluster,
        f64::from(u8::from(gauges.unsealed)),
    );
    // Every unsealed node serves (there are no standbys).
    gauge(
        &format!("{vault}core_active"),
        &by_cluster,
        f64::from(u8::from(gauges.unsealed)),
    );
    gauge("transitd_cached_keys", "", gauges.cached_keys as f64);
    gauge("transitd_audit_devices", "", gauges.audit_devices as f64);
    gauge(
        "transitd_audit_devices_failing",
        "",
        gauges.failing_audit_devices as f64,
    );
    let process = Process::read();
    for (name, value) in [
        ("process_resident_memory_bytes", process.resident_bytes),
        ("process_virtual_memory_bytes", process.virtual_bytes),
        ("process_threads", process.threads),
        ("process_open_fds", process.open_fds),
        ("process_max_fds", process.max_fds),
        ("process_start_time_seconds", process.start_time),
    ] {
        if let Some(value) = value {
            gauge(name, "", value);
        }
    }
    let mut counter = |name: &str, value: f64| {
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
    };
    counter("transitd_auto_rotations", gauges.auto_rotations as f64);
    if let Some(cpu) = process.cpu_seconds {
        counter("process_cpu_seconds_total", cpu);
    }
    out
}

/// Vault's JSON form. Names are the Prometheus names with their first two
/// `_` as `.` (`vault.core.handle_request`); counters are totals since
/// start (Vault's are per 10 s interval), timers' `Min`/`Max` over the
/// recent window.
pub fn json(telemetry: &Telemetry, gauges: &Gauges, now: time::OffsetDateTime) -> Value {
    let text = prometheus(telemetry, gauges);
    let mut out_gauges = Vec::new();
    let mut counters = Vec::new();
    let mut samples: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut kind = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            kind = rest.rsplit(' ').next().unwrap_or("");
            continue;
        }
        let Some(Sample {
            name,
            labels,
            value,
        }) = parse_line(line)
        else {
            continue;
        };
        match kind {
            "gauge" => out_gauges.push(json!({
                "Name": dotted(&name), "Value": value, "Labels": labels,
            })),
            "counter" => counters.push(json!({
                "Name": dotted(&name), "Count": value, "Rate": 0, "Sum": value,
                "Min": 0, "Max": 0, "Mean": 0, "Stddev": 0, "Labels": labels,
            })),
            "summary" => {
                let base = name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"))
                    .unwrap_or(&name)
                    .to_owned();
                let at = match samples.iter().position(|(n, _)| *n == base) {
                    Some(i) => i,
                    None => {
                        samples.push((base.clone(), Map::new()));
                        samples.len() - 1
                    }
                };
                let fields = &mut samples[at].1;
                let field = if name.ends_with("_sum") {
                    "Sum"
                } else if name.ends_with("_count") {
                    "Count"
                } else {
                    match labels.get("quantile").and_then(Value::as_str) {
                        Some("0") => "Min",
                        Some("1") => "Max",
                        _ => continue,
                    }
                };
                fields.insert(field.to_owned(), json!(value));
            }
            _ => {}
        }
    }
    let samples: Vec<Value> = samples
        .into_iter()
        .map(|(name, f)| {
            let get = |k: &str| f.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let (count, sum) = (get("Count"), get("Sum"));
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            json!({
                "Name": dotted(&name), "Count": count, "Rate": 0, "Sum": sum,
                "Min": get("Min"), "Max": get("Max"), "Mean": mean, "Stddev": 0,
                "Labels": {},
            })
        })
        .collect();
    // Vault's timestamp: the interval's start, "2006-01-02 15:04:05 -0700 MST".
    let t = now.to_offset(time::UtcOffset::UTC);
    let stamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    json!({
        "Timestamp": stamp,
        "Gauges": out_gauges,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })
}

/// One line of the text format.
struct Sample {
    name: String,
    labels: Map<String, Value>,
    value: f64,
}

/// `name{a="x",b="y"} value` (our own output: no escapes but `\"` and `\\`).
fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut map = Map::new();
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once("=\"")?;
        let v = v.strip_suffix('"').unwrap_or(v);
        map.insert(k.to_owned(), Value::String(v.replace("\\\"", "\"")));
    }
    Some(Sample {
        name: name.to_owned(),
        labels: map,
        value,
    })
}

fn dotted(name: &str) -> String {
    name.replacen('_', ".", 2)
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// This process, from `/proc/self` (Linux); `None` where unreadable.
#[derive(Default)]
struct Process {
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    threads: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    start_time: Option<f64>,
    cpu_seconds: Option<f64>,
}

impl Process {
    fn read() -> Self {
        // Linux's fixed units: 4 KiB pages in statm, 100 ticks a second.
        const PAGE: f64 = 4096.0;
        const TICKS: f64 = 100.0;
        let mut p = Self::default();
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let mut fields = statm.split_whitespace().map(|f| f.parse::<f64>().ok());
            p.virtual_bytes = fields.next().flatten().map(|n| n * PAGE);
            p.resident_bytes = fields.next().flatten().map(|n| n * PAGE);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which may hold spaces.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
            // utime and stime are fields 14 and 15, num_threads 20,
            // starttime 22 (1-based, of the whole line).
            p.cpu_seconds = field(11).zip(field(12)).map(|(u, s)| (u + s) / TICKS);
            p.threads = field(17);
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|b| b.trim().parse::<f64>().ok())
            });
            p.start_time = field(19).zip(boot).map(|(t, b)| b + t / TICKS);
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64);
        p.max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .ok()
            .map(|(soft, _)| soft as f64);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> String {
        let gauges = Gauges {
            cluster: "c\"1".to_owned(),
            unsealed: true,
            auto_rotations: 2,
            ..Gauges::default()
        };
        prometheus(&Telemetry::default(), &gauges)
    }

    #[test]
    fn gauges_are_read_when_rendered() {
        let text = text();
        assert!(
            text.contains("vault_core_unsealed{cluster=\"c\\\"1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("vault_core_active{cluster=\"c\\\"1\"} 1\n"));
        assert!(text.contains("transitd_auto_rotations 2\n"));
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
        assert!(text.contains("# TYPE process_open_fds gauge\n"));
    }

    #[test]
    fn the_json_form_has_vaults_shape() {
        metrics().handle_request.record(3.0);
        let gauges = Gauges {
            cluster: "c".to_owned(),
            unsealed: true,
            ..Gauges::default()
        };
        let now = time::OffsetDateTime::from_unix_timestamp(1_796_672_284).unwrap();
        let j = json(&Telemetry::default(), &gauges, now);
        assert_eq!(j["Timestamp"], "2026-12-07 19:38:04 +0000 UTC");
        assert_eq!(j["Points"], json!([]));
        let find = |list: &str, name: &str| {
            j[list]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["Name"] == name).cloned())
                .unwrap_or_else(|| panic!("{name} in {list}: {j}"))
        };
        let unsealed = find("Gauges", "vault.core.unsealed");
        assert_eq!(unsealed["Value"], 1.0);
        assert_eq!(unsealed["Labels"], json!({"cluster": "c"}));
        let failures = find("Counters", "vault.audit.log_request_failure");
        assert!(failures["Count"].is_number());
        let timer = find("Samples", "vault.core.handle_request");
        assert!(timer["Count"].as_f64().unwrap() >= 1.0);
        assert!(timer["Max"].as_f64().unwrap() >= 3.0 || timer["Count"].as_f64().unwrap() > 1.0);
    }
}
