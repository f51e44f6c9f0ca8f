//! Tests of the PostgreSQL storage, by area, against a real PostgreSQL
//! (`TEST_URL`, a fresh schema each): they fail, not skip, without it.

mod conn_string;
mod deadlines;
mod feed;
mod operations;
mod outage;
mod schema;
pub(crate) mod support;
mod tls;
