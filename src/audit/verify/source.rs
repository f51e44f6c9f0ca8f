//! What the checker reads: a log file and its sidecar, from disk
//! ([`FileSource`]) or from memory ([`MemorySource`], for the fuzz target and
//! tests), behind one trait so the checks never know which.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use super::super::device::sidecar_path;

/// One log file and its `<FILE>.checkpoint` sidecar.
pub trait LogSource {
    /// How reports name the file.
    fn name(&self) -> String;
    /// How reports name the sidecar.
    fn sidecar_name(&self) -> String;
    /// The file's bytes from the start; may be called more than once.
    fn open(&self) -> io::Result<Box<dyn Read + '_>>;
    /// The sidecar's bytes, `None` when there is none.
    fn sidecar(&self) -> io::Result<Option<Vec<u8>>>;
}

/// A log file on disk.
#[derive(Debug)]
pub struct FileSource<'a>(pub &'a Path);

impl LogSource for FileSource<'_> {
    fn name(&self) -> String {
        self.0.display().to_string()
    }

    fn sidecar_name(&self) -> String {
        sidecar_path(self.0).display().to_string()
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.0)?))
    }

    fn sidecar(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(sidecar_path(self.0)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A log held in memory.
#[derive(Debug)]
pub struct MemorySource {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sidecar: Option<Vec<u8>>,
}

impl LogSource for MemorySource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn sidecar_name(&self) -> String {
        format!("{}.checkpoint", self.name)
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.bytes.as_slice()))
    }

    fn sidecar(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.sidecar.clone())
    }
}
