//! Reading configuration files with a size limit.

use std::path::Path;

use criguard_files::ReadError;

use crate::{Error, MAX_CONFIG_FILE_SIZE};

/// Reads a configuration file, refusing one larger than
/// [`MAX_CONFIG_FILE_SIZE`] without reading all of it.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    criguard_files::read_limited(path, MAX_CONFIG_FILE_SIZE).map_err(|e| match e {
        ReadError::Io(source) => Error::Read {
            path: path.display().to_string(),
            source,
        },
        ReadError::TooLarge { .. } => Error::FileTooLarge {
            file: path.display().to_string(),
        },
    })
}

/// Refuses contents over [`MAX_CONFIG_FILE_SIZE`], whether read from disk
/// or handed to a `from_files` constructor.
pub(crate) fn check_size(name: &str, contents: &[u8]) -> Result<(), Error> {
    if u64::try_from(contents.len()).map_or(true, |size| size > MAX_CONFIG_FILE_SIZE) {
        return Err(Error::FileTooLarge {
            file: name.to_owned(),
        });
    }
    Ok(())
}
