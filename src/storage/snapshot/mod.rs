//! Snapshots of a SQLite store: a consistent copy taken while the server
//! runs (`save`), put back onto a stopped node (`restore`). A snapshot holds
//! the database file as it is on disk, so only sealed entries and the seal's
//! plain configuration: nothing is decrypted, and the restored node unseals
//! with the shares (or seal key) that were valid when it was taken.

mod files;
mod format;
mod restore;
mod save;

pub use format::{HEADER_LEN, Header, MAGIC};
pub use restore::{Restored, restore};
pub use save::{Destination, save};
