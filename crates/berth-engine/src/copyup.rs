//! Docker's copy-up: an empty volume mounted over a directory of the image is first filled with
//! that directory's files, owners and modes (unless the mount says `nocopy`). The image is read
//! through a read-only overlay view, mounted on a thread with a mount namespace of its own (so
//! the mount goes with the thread, whatever happens); the directory is resolved inside the view
//! and streamed as a tar (`tree::tar` into `tree::untar`), so no symlink of the image leads the
//! copy out of it or the volume.

use crate::build::{with_private_mounts, Mounted};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::digest::Digest;
use berth_image::tree::tar::TreeWriter;
use berth_image::tree::untar::{untar, Target};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether a volume's directory has nothing in it yet (Docker copies only into an empty one).
fn is_empty(dir: &Path) -> Result<bool> {
    let mut rd = std::fs::read_dir(dir).map_err(|x| EngineError::io(dir.display(), x))?;
    Ok(rd.next().is_none())
}

/// A scratch mount point under the runroot, named after this process.
fn scratch(e: &Engine) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    e.runroot.join("copyup").join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Fills the empty volume directory `volume` with what `layers` (bottom to top) hold at
/// `destination`; nothing when the image has no directory there or the volume has files.
pub(crate) fn copy_up(
    e: &Engine,
    layers: &[Digest],
    destination: &str,
    volume: &Path,
) -> Result<()> {
    if layers.is_empty() || !is_empty(volume)? {
        return Ok(());
    }
    let view = e.snapshots.view(layers)?;
    let target = scratch(e);
    let copied = with_private_mounts(|| {
        let mounted = Mounted::new(&view, &target)?;
        copy_dir(&mounted, destination, volume)
    });
    let _ = std::fs::remove_dir(&target);
    copied.map_err(|x| x.context(format!("copying the image's {destination} into its volume")))
}

/// Streams the view's `destination` (when it is a directory) into `volume`.
fn copy_dir(view: &Mounted, destination: &str, volume: &Path) -> Result<()> {
    let Some(source) = open_directory(view.root(), destination)? else {
        return Ok(());
    };
    let volume_fd = berth_image::tree::diff::open_store_dir(volume)
        .map_err(|x| EngineError::io(volume.display(), x))?;
    let (reader, writer) = std::io::pipe().map_err(|x| EngineError::io("pipe", x))?;
    std::thread::scope(|s| {
        let sender = s.spawn(move || -> std::io::Result<()> {
            let mut w = TreeWriter::new(writer, false);
            w.add(&source, Path::new("."))?;
            w.finish().map(drop)
        });
        let target = Target {
            root: volume_fd.as_fd(),
            base: PathBuf::from("/"),
            keep_owner: true,
            owners: None,
        };
        let received = untar(reader, &target);
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the tree writer panicked")));
        // The receiver's error says more than the broken pipe the sender then meets.
        received
            .map(drop)
            .and(sent)
            .map_err(|x| EngineError::io(volume.display(), x))
    })
}

/// `path` inside the view as an `O_PATH` handle when it is a directory; None when the image
/// has nothing (or not a directory) there.
fn open_directory(root: std::os::fd::BorrowedFd<'_>, path: &str) -> Result<Option<OwnedFd>> {
    match berth_sys::root::open(root.as_raw_fd(), Path::new(path), libc::O_DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(x) if matches!(x.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(x) => Err(EngineError::io(path, x)),
    }
}
