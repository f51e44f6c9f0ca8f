mod batches;
mod headers;
mod tokens;
