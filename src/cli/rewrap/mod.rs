//! `transitd rewrap`: rewrap every ciphertext of a file with a key's latest
//! version, over HTTP (transitd or OpenBao/Vault), in batches, writing the
//! file back in the same shape.
//!
//! Resumable: the output is written in input order, so after an
//! interruption (Ctrl-C, a crash, a lost connection) the records already in
//! the output are exactly the ones done. A rerun with the same arguments
//! drops a torn last record, skips that many input records and appends the
//! rest: nothing is written twice or lost. Batches run concurrently; their
//! results are put back in order before they are written.
//!
//! An item the server refuses (not a ciphertext of this key, a wrong
//! context) keeps its old ciphertext in the output, and its record number
//! and the server's message go to the error report (stderr and
//! `OUT.errors`); the exit code is then 1. A failure of the whole request
//! (permission denied, no such key, the server unreachable after retries)
//! stops the run with exit code 2, everything before it written.

mod records;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Flags;
use super::client::Client;
use records::{Fields, Format, Item, Reader, Record, Writer};

const USAGE: &str = "usage: transitd rewrap -key=NAME [-mount=transit] [-batch=250] [-concurrency=4]\n       \
     [-format=lines|csv|jsonl] [-field=ciphertext] [-context-field=NAME] [-aad-field=NAME]\n       \
     [-address=URL] [-ca-cert=FILE] IN OUT";

const ITEM_FAILURES: u8 = 1;
const STOPPED: u8 = 2;
/// Attempts of one batch when the server cannot be reached or answers 5xx.
const ATTEMPTS: u32 = 4;
/// At most this long between two syncs of the output.
const SYNC_EVERY: Duration = Duration::from_secs(1);

struct Settings {
    key: String,
    mount: String,
    batch: usize,
    concurrency: usize,
    format: Format,
    fields: Fields,
    input: PathBuf,
    output: PathBuf,
}

impl Settings {
    fn parse(args: &[String]) -> Result<(Self, Flags), String> {
        let flags = Flags::parse(
            args,
            &[
                "key",
                "mount",
                "batch",
                "concurrency",
                "format",
                "field",
                "context-field",
                "aad-field",
                "address",
                "ca-cert",
            ],
        )?;
        let [input, output] = flags.positional.as_slice() else {
            return Err(USAGE.to_owned());
        };
        let number = |name: &str, default: usize, max: usize| -> Result<usize, String> {
            match flags.value(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| format!("-{name} must be a number from 1 to {max}")),
            }
        };
        let key = flags
            .value("key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("-key is required\n{USAGE}"))?
            .to_owned();
        let format = Format::choose(flags.value("format"), Path::new(input))?;
        let field = flags.value("field").unwrap_or("ciphertext").to_owned();
        let named = |name: &str| flags.value(name).map(str::to_owned);
        if format == Format::Lines
            && (named("context-field").is_some() || named("aad-field").is_some())
        {
            return Err("-context-field and -aad-field need -format=csv or jsonl".to_owned());
        }
        let settings = Self {
            key,
            mount: flags
                .value("mount")
                .unwrap_or("transit")
                .trim_matches('/')
                .to_owned(),
            batch: number("batch", 250, 10_000)?,
            concurrency: number("concurrency", 4, 64)?,
            format,
            fields: Fields {
                ciphertext: field,
                context: named("context-field"),
                associated_data: named("aad-field"),
            },
            input: PathBuf::from(input),
            output: PathBuf::from(output),
        };
        Ok((settings, flags))
    }
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let (settings, flags) = Settings::parse(args)?;
    let client = Arc::new(Client::from_env(&flags)?);
    let total = count_records(&settings.input, settings.format)?;
    claim_output(&settings)?;
    let (out, done) = open_output(&settings.output, settings.format)?;
    if done > total {
        return Err(format!(
            "{} holds {done} records, more than {} has ({total}): not its output",
            settings.output.display(),
            settings.input.display()
        ));
    }
    if done > 0 {
        eprintln!(
            "resuming: {done} of {total} records are already in {}",
            settings.output.display()
        );
    }
    let errors_path = PathBuf::from(format!("{}.errors", settings.output.display()));
    let outcome = rewrap_all(&settings, &client, out, done, total, &errors_path)?;
    eprintln!("{}", outcome.summary(done, total));
    Ok(if let Some(stop) = &outcome.stopped {
        eprintln!(
            "stopped: {stop}\nrerun the same command to go on from record {}",
            done + outcome.written + 1
        );
        ExitCode::from(STOPPED)
    } else if outcome.failed > 0 {
        eprintln!(
            "{} records kept their ciphertext; see {}",
            outcome.failed,
            errors_path.display()
        );
        ExitCode::from(ITEM_FAILURES)
    } else {
        ExitCode::SUCCESS
    })
}

/// How many records `path` holds.
fn count_records(path: &Path, format: Format) -> Result<usize, String> {
    let mut reader = Reader::open(path, format)?;
    let mut n = 0;
    while let Some(record) = reader.next_record() {
        record.map_err(|e| format!("{}: record {}: {e}", path.display(), n + 1))?;
        n += 1;
    }
    Ok(n)
}

/// Make sure the output is this run's to write, or a resumable output of an
/// earlier run with the same arguments: records already there are trusted
/// (skipped), so an unrelated file, or the input itself, must never pass
/// for one. The run is recorded in `OUT.rewrap` (the input's path and size,
/// mount, key and format) before the first record is written.
fn claim_output(settings: &Settings) -> Result<(), String> {
    let input = std::fs::canonicalize(&settings.input)
        .map_err(|e| format!("cannot read {}: {e}", settings.input.display()))?;
    let input_bytes = std::fs::metadata(&input).map_err(|e| e.to_string())?.len();
    if let Ok(output) = std::fs::canonicalize(&settings.output)
        && output == input
    {
        return Err("the output must be another file than the input".to_owned());
    }
    let run = json!({
        "input": input.display().to_string(),
        "input_bytes": input_bytes,
        "mount": settings.mount,
        "key": settings.key,
        "format": format!("{:?}", settings.format),
    });
    let marker = PathBuf::from(format!("{}.rewrap", settings.output.display()));
    let holds_data = std::fs::metadata(&settings.output).is_ok_and(|m| m.len() > 0);
    if holds_data {
        let recorded: Option<Value> = std::fs::read(&marker)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if recorded.as_ref() != Some(&run) {
            return Err(format!(
                "{} already holds data that no run of this command with these arguments wrote \
                 (see {}); remove it or write elsewhere",
                settings.output.display(),
                marker.display()
            ));
        }
        return Ok(());
    }
    let mut file =
        File::create(&marker).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    file.write_all(run.to_string().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))
}

/// The output, opened for appending after its last complete record (a torn
/// one, from an interrupted run, is cut off), and how many records it holds.
fn open_output(path: &Path, format: Format) -> Result<(File, usize), String> {
    let shown = path.display();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let (keep, records) = match format {
        Format::Lines | Format::Jsonl => {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            (keep, bytes[..keep].iter().filter(|&&b| b == b'\n').count())
        }
        Format::Csv => complete_csv(&bytes),
    };
    file.set_len(keep as u64)
        .and_then(|()| file.seek(std::io::SeekFrom::End(0)).map(|_| ()))
        .map_err(|e| format!("cannot truncate {shown}: {e}"))?;
    Ok((file, records))
}

/// The length of the complete CSV records at the start of `bytes`, and how
/// many data records (after the header) they are.
fn complete_csv(bytes: &[u8]) -> (usize, usize) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut ends = Vec::new();
    let mut record = csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        ends.push(reader.position().byte() as usize);
    }
    // A last record not ended by a newline may be torn.
    while ends
        .last()
        .is_some_and(|&end| end == 0 || bytes.get(end - 1) != Some(&b'\n'))
    {
        ends.pop();
    }
    match ends.last() {
        None => (0, 0),
        Some(&end) => (end, ends.len() - 1),
    }
}

/// One batch of consecutive records, and what became of each.
struct Batch {
    index: usize,
    /// Number of the first record (1-based, after the CSV header).
    first: usize,
    records: Vec<Record>,
}

enum Done {
    Ok {
        records: Vec<Record>,
        failures: Vec<(usize, String)>,
        rewrapped: usize,
    },
    Stopped(String),
}

struct Outcome {
    written: usize,
    rewrapped: usize,
    failed: usize,
    stopped: Option<String>,
    elapsed: Duration,
}

impl Outcome {
    fn summary(&self, done_before: usize, total: usize) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "{} records written ({} rewrapped, {} kept as they were) in {:.1} s, {:.0} records/s; {} of {total} done",
            self.written,
            self.rewrapped,
            self.failed,
            secs,
            self.written as f64 / secs,
            done_before + self.written
        )
    }
}

fn rewrap_all(
    settings: &Settings,
    client: &Arc<Client>,
    out: File,
    done: usize,
    total: usize,
    errors_path: &Path,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut reader = Reader::open(&settings.input, settings.format)?;
    let header = reader.header().cloned();
    let mut writer = Writer::new(out, settings.format);
    if done == 0
        && let Some(h) = &header
    {
        writer.write_header(h)?;
    }
    for _ in 0..done {
        reader.next_record();
    }
    let errors = OpenOptions::new()
        .create(true)
        .append(true)
        .open(errors_path)
        .map_err(|e| format!("cannot open {}: {e}", errors_path.display()))?;
    let bar = indicatif::ProgressBar::new((total - done) as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records  {per_sec}  ETA {eta}",
        )
        .map_err(|e| e.to_string())?,
    );

    // reader -> feeder thread -> workers (HTTP) -> this thread, in order.
    let (work_tx, work_rx) = mpsc::sync_channel::<Batch>(settings.concurrency * 2);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Done)>();
    let feeder = spawn_feeder(reader, settings.batch, done + 1, work_tx);
    let workers = spawn_workers(settings, client, header.as_ref(), work_rx, done_tx);
    let mut outcome = write_in_order(&done_rx, &mut writer, errors, errors_path, &bar);
    // A stop leaves batches unread: dropping the results makes each worker
    // stop at its next one, and the last worker gone makes the feeder stop.
    drop(done_rx);
    let synced = writer.sync();
    bar.finish_and_clear();
    for w in workers {
        let _ = w.join();
    }
    if let Ok(Err(e)) = feeder.join()
        && outcome.as_ref().is_ok_and(|o| o.stopped.is_none())
    {
        outcome = outcome.map(|o| Outcome {
            stopped: Some(e),
            ..o
        });
    }
    let mut outcome = outcome?;
    synced?;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// Read records into numbered batches until the input ends or nobody takes
/// them any more.
fn spawn_feeder(
    mut reader: Reader,
    batch_size: usize,
    first: usize,
    work_tx: mpsc::SyncSender<Batch>,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let (mut index, mut number) = (0, first);
        loop {
            let mut records = Vec::with_capacity(batch_size);
            while records.len() < batch_size {
                match reader.next_record() {
                    Some(r) => records.push(r?),
                    None => break,
                }
            }
            if records.is_empty() {
                return Ok(());
            }
            let n = records.len();
            let batch = Batch {
                index,
                first: number,
                records,
            };
            if work_tx.send(batch).is_err() {
                return Ok(()); // every worker stopped
            }
            index += 1;
            number += n;
        }
    })
}

/// `settings.concurrency` threads, each sending one batch at a time. They
/// own the only receiver of the batches, so once they have all stopped the
/// feeder's next send fails and it stops too.
fn spawn_workers(
    settings: &Settings,
    client: &Arc<Client>,
    header: Option<&csv::StringRecord>,
    work_rx: mpsc::Receiver<Batch>,
    done_tx: mpsc::Sender<(usize, Done)>,
) -> Vec<std::thread::JoinHandle<()>> {
    let work_rx = Arc::new(Mutex::new(work_rx));
    let path = format!("{}/rewrap/{}", settings.mount, settings.key);
    (0..settings.concurrency)
        .map(|_| {
            let (work_rx, done_tx) = (Arc::clone(&work_rx), done_tx.clone());
            let (client, path, fields, header) = (
                Arc::clone(client),
                path.clone(),
                settings.fields.clone(),
                header.cloned(),
            );
            std::thread::spawn(move || {
                loop {
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(batch)) = next else { break };
                    let index = batch.index;
                    let result = rewrap_batch(&client, &path, &fields, header.as_ref(), batch);
                    if done_tx.send((index, result)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect()
}

/// Write the batches' records in input order as they complete (synced at
/// least every [`SYNC_EVERY`]), and their failures to the error report;
/// stop at the first batch that stopped.
fn write_in_order(
    done_rx: &mpsc::Receiver<(usize, Done)>,
    writer: &mut Writer,
    mut errors: File,
    errors_path: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<Outcome, String> {
    let mut outcome = Outcome {
        written: 0,
        rewrapped: 0,
        failed: 0,
        stopped: None,
        elapsed: Duration::ZERO,
    };
    let mut pending: BTreeMap<usize, Done> = BTreeMap::new();
    let (mut next, mut synced) = (0, Instant::now());
    for (index, result) in done_rx.iter() {
        pending.insert(index, result);
        while let Some(result) = pending.remove(&next) {
            let (records, failures, rewrapped) = match result {
                Done::Stopped(why) => {
                    outcome.stopped = Some(why);
                    errors.sync_data().ok();
                    return Ok(outcome);
                }
                Done::Ok {
                    records,
                    failures,
                    rewrapped,
                } => (records, failures, rewrapped),
            };
            for record in &records {
                writer.write(record)?;
            }
            for (number, message) in &failures {
                writeln!(errors, "record {number}: {message}")
                    .map_err(|e| format!("cannot write {}: {e}", errors_path.display()))?;
                bar.suspend(|| eprintln!("record {number}: {message}"));
            }
            outcome.written += records.len();
            outcome.rewrapped += rewrapped;
            outcome.failed += failures.len();
            bar.inc(records.len() as u64);
            next += 1;
        }
        if synced.elapsed() >= SYNC_EVERY {
            writer.sync()?;
            synced = Instant::now();
        }
    }
    errors.sync_data().ok();
    Ok(outcome)
}

/// Rewrap one batch: its items in one `batch_input` request, retried while
/// the server is unreachable or failing (5xx).
fn rewrap_batch(
    client: &Client,
    path: &str,
    fields: &Fields,
    header: Option<&csv::StringRecord>,
    batch: Batch,
) -> Done {
    let mut failures = Vec::new();
    // Records with an item, by position in the batch.
    let mut asked: Vec<(usize, Item)> = Vec::new();
    for (i, record) in batch.records.iter().enumerate() {
        match record.item(fields, header) {
            Ok(Some(item)) => asked.push((i, item)),
            Ok(None) => {}
            Err(e) => failures.push((batch.first + i, e)),
        }
    }
    if asked.is_empty() {
        return Done::Ok {
            records: batch.records,
            failures,
            rewrapped: 0,
        };
    }
    let input: Vec<Value> = asked
        .iter()
        .map(|(_, item)| {
            let mut v = json!({ "ciphertext": item.ciphertext });
            if let Some(c) = &item.context {
                v["context"] = json!(c);
            }
            if let Some(a) = &item.associated_data {
                v["associated_data"] = json!(a);
            }
            v
        })
        .collect();
    let body = json!({ "batch_input": input });
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << attempt));
        }
        let (status, reply) = match client.exchange("POST", path, Some(body.clone())) {
            Ok(answer) => answer,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let results = reply["data"]["batch_results"].as_array();
        match results {
            // Per item (a batch where every item failed is a 400 with results).
            Some(results) if results.len() == asked.len() && status < 500 => {
                return apply(batch, &asked, results, failures, fields, header);
            }
            _ if status >= 500 => last = format!("HTTP {status}: {}", api_errors(&reply)),
            _ => {
                return Done::Stopped(format!(
                    "POST {path}: HTTP {status}: {}",
                    api_errors(&reply)
                ));
            }
        }
    }
    Done::Stopped(format!("POST {path}: {last} (after {ATTEMPTS} attempts)"))
}

/// Put each item's new ciphertext in its record, or note its error.
fn apply(
    batch: Batch,
    asked: &[(usize, Item)],
    results: &[Value],
    mut failures: Vec<(usize, String)>,
    fields: &Fields,
    header: Option<&csv::StringRecord>,
) -> Done {
    let mut records = batch.records;
    let mut rewrapped = 0;
    for ((i, _), result) in asked.iter().zip(results) {
        let number = batch.first + i;
        let new = result["ciphertext"].as_str().filter(|c| !c.is_empty());
        match new {
            Some(ct) => match records[*i].with_ciphertext(fields, header, ct) {
                Ok(r) => {
                    records[*i] = r;
                    rewrapped += 1;
                }
                Err(e) => failures.push((number, e)),
            },
            None => failures.push((
                number,
                result["error"]
                    .as_str()
                    .unwrap_or("no ciphertext in the reply")
                    .to_owned(),
            )),
        }
    }
    failures.sort();
    Done::Ok {
        records,
        failures,
        rewrapped,
    }
}

fn api_errors(reply: &Value) -> String {
    reply["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| reply.to_string())
}

#[cfg(test)]
mod tests {
    use super::complete_csv;

    #[test]
    fn a_torn_csv_record_is_not_counted() {
        let whole = b"ct,note\nvault:v1:a,\"two\nlines\"\nvault:v1:b,x\n";
        assert_eq!(complete_csv(whole), (whole.len(), 2));
        let torn = &whole[..whole.len() - 3];
        let (keep, n) = complete_csv(torn);
        assert_eq!(
            (n, &torn[..keep]),
            (1, &b"ct,note\nvault:v1:a,\"two\nlines\"\n"[..])
        );
        assert_eq!(complete_csv(b"ct,no"), (0, 0));
        assert_eq!(complete_csv(b""), (0, 0));
    }
}
