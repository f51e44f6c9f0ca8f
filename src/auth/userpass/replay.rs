//! Replaying a caller's edit on a newer version after a lost compare-and-swap.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::internal;
use crate::storage::StoreResult;

/// A caller's one-shot edit of a stored object, made repeatable for
/// compare-and-swap: it runs once, on the first version read; when another
/// node wrote in between, the fields it changed (those whose JSON differs from
/// the version it saw) are set again on the newer version, so both writers'
/// changes survive.
pub(crate) struct Replay<T, F> {
    edit: Option<F>,
    changes: serde_json::Map<String, serde_json::Value>,
    _value: std::marker::PhantomData<fn(T) -> T>,
}

impl<T, F> Replay<T, F>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(&mut T) -> StoreResult<()>,
{
    pub(crate) fn new(edit: F) -> Self {
        Self {
            edit: Some(edit),
            changes: serde_json::Map::new(),
            _value: std::marker::PhantomData,
        }
    }

    /// `base` with the edit applied.
    pub(crate) fn apply(&mut self, mut base: T) -> StoreResult<T> {
        if let Some(edit) = self.edit.take() {
            let before = json_object(&base)?;
            edit(&mut base)?;
            self.changes = json_object(&base)?
                .into_iter()
                .filter(|(k, v)| before.get(k) != Some(v))
                .collect();
            return Ok(base);
        }
        let mut object = json_object(&base)?;
        object.extend(self.changes.clone());
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| internal("edit", e))
    }
}

fn json_object<T: Serialize>(value: &T) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(value).map_err(|e| internal("edit", e))? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(internal("edit", format!("not an object: {other}"))),
    }
}
