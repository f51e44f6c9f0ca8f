//! `batch_input`: reading a batch and answering one.

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;

/// The items of `batch_input`, or `None` for a single-item request.
pub fn batch_input<'p>(ctx: &Ctx<'_>, p: &'p Params<'_>) -> ApiResult<Option<Vec<Params<'p>>>> {
    let Some(raw) = p.raw("batch_input") else {
        return Ok(None);
    };
    let Value::Array(items) = raw else {
        return Err(ApiError::bad("batch_input must be an array of objects"));
    };
    if items.is_empty() {
        return Err(ApiError::bad("missing batch input to process"));
    }
    let limit = ctx.state.limits.max_batch_items;
    if items.len() > limit {
        return Err(ApiError::bad(format!(
            "batch_input has {} items; the limit is {limit}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(Params::borrowed(map)),
            _ => Err(ApiError::bad("batch_input items must be JSON objects")),
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `{"batch_results": [...]}`, the results moved in (`json!` would serialise
/// a deep copy of every result).
pub fn batch_results(results: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("batch_results".to_owned(), Value::Array(results));
    Value::Object(m)
}

/// One batch result's fields, the values moved in (`json!` copies them).
pub fn result_fields<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

pub fn item_error(e: ApiError, reference: &str, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in extra {
        m.insert((*k).to_owned(), v.clone());
    }
    m.insert(
        "error".into(),
        json!(e.messages().first().cloned().unwrap_or_default()),
    );
    m.insert("reference".into(), json!(reference));
    Value::Object(m)
}
