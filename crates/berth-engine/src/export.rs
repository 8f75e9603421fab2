//! `export`: a container's root filesystem (its image's layers and its writable layer, merged;
//! no volumes, no /proc) as one tar stream. A running container's overlay is read where the host
//! sees it mounted; a stopped one's is mounted for the export under a hold. Every entry is
//! reached through fds (`berth_image::tree`): a symlink inside is archived, never followed.

use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::Engine;
use berth_image::tree::tar::TreeWriter;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::io::Write;
use std::path::Path;

impl Engine {
    /// Writes the root filesystem of container `what` to `out` as a tar.
    pub fn export(&self, what: &str, out: impl Write) -> Result<()> {
        let rec = self.get(what)?;
        let rootfs = self.records.dir(&rec.id).join("rootfs");
        // A stopped container's snapshot is mounted, under its lock, for as long as we read it.
        let _lock = match rec.is_active() {
            true => None,
            false => Some(self.records.lock(&rec.id)?),
        };
        let _mounted = match rec.is_active() {
            true => None,
            false => self.mount_for(&rec, "export")?,
        };
        if !crate::launch::is_mountpoint(&rootfs) {
            return Err(EngineError::msg(format!(
                "container {}: its root filesystem is not mounted",
                rec.name
            )));
        }
        let fd = open(
            &rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| EngineError::msg(format!("container {}: rootfs: {e}", rec.name)))?;
        let mut w = TreeWriter::new(out, false);
        w.add_contents(&fd, Path::new(""))
            .and_then(|()| w.finish())
            .and_then(|mut o| o.flush())
            .map_err(|e| EngineError::io(format!("exporting container {}", rec.name), e))?;
        self.emit(Event::container(&rec, "export"));
        Ok(())
    }
}
