//! The three input shapes of `transitd rewrap`, read and written back in
//! the same shape with only the ciphertext changed: one ciphertext per line,
//! CSV with a header row (a named column), and JSON Lines (a named field,
//! the other fields kept in their order and spelling).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Lines,
    Csv,
    Jsonl,
}

impl Format {
    /// `-format`, else by the input's extension (`.csv`, `.jsonl`/`.ndjson`).
    pub(super) fn choose(flag: Option<&str>, input: &Path) -> Result<Self, String> {
        let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
        match flag.unwrap_or(ext) {
            "lines" | "txt" | "" => Ok(Self::Lines),
            "csv" => Ok(Self::Csv),
            "jsonl" | "ndjson" => Ok(Self::Jsonl),
            other if flag.is_some() => {
                Err(format!("unknown -format {other:?} (lines, csv or jsonl)"))
            }
            _ => Ok(Self::Lines),
        }
    }
}

/// Where the ciphertext, context and associated data are in a record.
#[derive(Clone, Debug)]
pub(super) struct Fields {
    pub(super) ciphertext: String,
    pub(super) context: Option<String>,
    pub(super) associated_data: Option<String>,
}

/// What one record asks to rewrap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) ciphertext: String,
    pub(super) context: Option<String>,
    pub(super) associated_data: Option<String>,
}

/// One input record, kept whole so it can be written back.
#[derive(Clone, Debug)]
pub(super) enum Record {
    /// A line (without its newline). Blank lines pass through.
    Line(String),
    Csv(csv::StringRecord),
    /// A JSON object's members in their order, values as written.
    Json(Vec<(String, Box<RawValue>)>),
    /// A line of JSON Lines that is blank: passes through.
    BlankJson,
}

/// The records of an input file, read as they are needed.
pub(super) enum Reader {
    Lines(std::io::Lines<BufReader<File>>),
    Csv {
        header: csv::StringRecord,
        rows: csv::StringRecordsIntoIter<File>,
    },
    Jsonl(std::io::Lines<BufReader<File>>),
}

impl Reader {
    pub(super) fn open(path: &Path, format: Format) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(match format {
            Format::Lines => Self::Lines(BufReader::new(file).lines()),
            Format::Jsonl => Self::Jsonl(BufReader::new(file).lines()),
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
                let header = reader
                    .headers()
                    .map_err(|e| format!("{}: no CSV header row: {e}", path.display()))?
                    .clone();
                Self::Csv {
                    header,
                    rows: reader.into_records(),
                }
            }
        })
    }

    /// The CSV header row.
    pub(super) fn header(&self) -> Option<&csv::StringRecord> {
        match self {
            Self::Csv { header, .. } => Some(header),
            _ => None,
        }
    }

    /// The next record; `None` at the end.
    pub(super) fn next_record(&mut self) -> Option<Result<Record, String>> {
        match self {
            Self::Lines(lines) => Some(lines.next()?.map(Record::Line).map_err(|e| e.to_string())),
            Self::Csv { rows, .. } => {
                Some(rows.next()?.map(Record::Csv).map_err(|e| e.to_string()))
            }
            Self::Jsonl(lines) => Some(match lines.next()? {
                Err(e) => Err(e.to_string()),
                Ok(line) if line.trim().is_empty() => Ok(Record::BlankJson),
                Ok(line) => ordered_object(&line).map(Record::Json),
            }),
        }
    }
}

impl Record {
    /// The item to rewrap; `Ok(None)` for a record that passes through
    /// (a blank line); `Err` for a record without a ciphertext.
    pub(super) fn item(
        &self,
        fields: &Fields,
        header: Option<&csv::StringRecord>,
    ) -> Result<Option<Item>, String> {
        // A field's value by name, as this record's shape finds it.
        let get: Box<FieldLookup<'_>> = match self {
            Self::Line(line) if line.trim().is_empty() => return Ok(None),
            Self::BlankJson => return Ok(None),
            Self::Line(line) => {
                let ciphertext = line.trim().to_owned();
                Box::new(move |name| Ok((name == fields.ciphertext).then(|| ciphertext.clone())))
            }
            Self::Csv(row) => Box::new(move |name| {
                let i = column(header, name)?;
                Ok(row.get(i).map(str::to_owned))
            }),
            Self::Json(members) => {
                Box::new(move |name| match members.iter().find(|(k, _)| k == name) {
                    None => Ok(None),
                    Some((_, raw)) => serde_json::from_str::<String>(raw.get())
                        .map(Some)
                        .map_err(|_| format!("field {name:?} is not a string")),
                })
            }
        };
        let optional = |name: &Option<String>| -> Result<Option<String>, String> {
            Ok(name.as_deref().map(&get).transpose()?.flatten())
        };
        let (ciphertext, context, associated_data) = (
            get(&fields.ciphertext)?,
            optional(&fields.context)?,
            optional(&fields.associated_data)?,
        );
        let ciphertext = ciphertext
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("no ciphertext in {:?}", fields.ciphertext))?;
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(Some(Item {
            ciphertext,
            context: nonempty(context),
            associated_data: nonempty(associated_data),
        }))
    }

    /// The record with `ciphertext` in place of the old one.
    pub(super) fn with_ciphertext(
        &self,
        fields: &Fields,
        header: Option<&csv::StringRecord>,
        ciphertext: &str,
    ) -> Result<Self, String> {
        Ok(match self {
            Self::Line(_) => Self::Line(ciphertext.to_owned()),
            Self::BlankJson => Self::BlankJson,
            Self::Csv(row) => {
                let i = column(header, &fields.ciphertext)?;
                Self::Csv(
                    row.iter()
                        .enumerate()
                        .map(|(j, v)| if j == i { ciphertext } else { v })
                        .collect(),
                )
            }
            Self::Json(members) => {
                let value = RawValue::from_string(
                    serde_json::to_string(ciphertext).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
                let mut members = members.clone();
                if let Some(m) = members.iter_mut().find(|(k, _)| *k == fields.ciphertext) {
                    m.1 = value;
                }
                Self::Json(members)
            }
        })
    }
}

/// A record's field value by name.
type FieldLookup<'a> = dyn Fn(&str) -> Result<Option<String>, String> + 'a;

fn column(header: Option<&csv::StringRecord>, name: &str) -> Result<usize, String> {
    header
        .and_then(|h| h.iter().position(|c| c == name))
        .ok_or_else(|| format!("the CSV header has no column {name:?}"))
}

/// A JSON object's members in their written order (`serde_json`'s own map
/// sorts them).
fn ordered_object(line: &str) -> Result<Vec<(String, Box<RawValue>)>, String> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                members.push((key, value));
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let members = (&mut de)
        .deserialize_map(Members)
        .map_err(|e| format!("not a JSON object: {e}"))?;
    de.end().map_err(|e| format!("not one JSON object: {e}"))?;
    Ok(members)
}

/// Writes records in the input's shape.
pub(super) enum Writer {
    Lines(std::io::BufWriter<File>),
    Csv(Box<csv::Writer<File>>),
}

impl Writer {
    pub(super) fn new(file: File, format: Format) -> Self {
        match format {
            Format::Lines | Format::Jsonl => Self::Lines(std::io::BufWriter::new(file)),
            Format::Csv => Self::Csv(Box::new(csv::WriterBuilder::new().from_writer(file))),
        }
    }

    pub(super) fn write_header(&mut self, header: &csv::StringRecord) -> Result<(), String> {
        match self {
            Self::Csv(w) => w.write_record(header).map_err(|e| e.to_string()),
            Self::Lines(_) => Ok(()),
        }
    }

    pub(super) fn write(&mut self, record: &Record) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        match (self, record) {
            (Self::Lines(w), Record::Line(line)) => writeln!(w, "{line}").map_err(io),
            (Self::Lines(w), Record::BlankJson) => writeln!(w).map_err(io),
            (Self::Lines(w), Record::Json(members)) => {
                let mut line = String::from("{");
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&serde_json::to_string(k).map_err(|e| e.to_string())?);
                    line.push(':');
                    line.push_str(v.get());
                }
                line.push('}');
                writeln!(w, "{line}").map_err(io)
            }
            (Self::Csv(w), Record::Csv(row)) => w.write_record(row).map_err(|e| e.to_string()),
            _ => Err("a record of another format".to_owned()),
        }
    }

    /// Everything written so far on disk (flushed and `fdatasync`ed).
    pub(super) fn sync(&mut self) -> Result<(), String> {
        let file = match self {
            Self::Lines(w) => {
                w.flush().map_err(|e| e.to_string())?;
                w.get_ref()
            }
            Self::Csv(w) => {
                w.flush().map_err(|e| e.to_string())?;
                w.get_ref()
            }
        };
        file.sync_data().map_err(|e| e.to_string())
    }
}
