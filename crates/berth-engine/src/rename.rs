//! `rename`: a container's name changes under the store's names lock (so no `create` takes the
//! same name meanwhile) and the container's own lock (so no other berth rewrites its record).

use crate::error::{EngineError, Result};
use crate::record::{valid_name, RecordError};
use crate::Engine;

/// Renames the container `what` (ID, prefix or name) to `new`.
pub fn rename(e: &Engine, what: &str, new: &str) -> Result<()> {
    let new = new.strip_prefix('/').unwrap_or(new);
    if what.is_empty() || new.is_empty() {
        return Err(EngineError::msg("Neither old nor new names may be empty"));
    }
    if !valid_name(new) {
        return Err(RecordError::BadName(new.into()).into());
    }
    let _names = e
        .records
        .names_lock()
        .map_err(|x| EngineError::msg(format!("names lock: {x}")))?;
    let rec = e.get(what)?;
    if rec.name == new {
        return Err(EngineError::msg(
            "Renaming a container with the same name as its current name",
        ));
    }
    if let Some(other) = e.records.id_by_name(new) {
        return Err(EngineError::msg(format!(
            "Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
        )));
    }
    let _lock = e.records.lock(&rec.id)?;
    let mut fresh = e.records.load(&rec.id)?;
    e.records
        .reserve_name(new, &rec.id)
        .map_err(|x| EngineError::msg(format!("name {new}: {x}")))?;
    fresh.name = new.to_string();
    e.records.save(&fresh)?;
    e.records.release_name(&rec.name, &rec.id);
    e.emit(
        crate::events::Event::container(&fresh, "rename").attr("oldName", format!("/{}", rec.name)),
    );
    Ok(())
}
