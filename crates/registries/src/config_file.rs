//! Reading configuration files with a size limit.

use std::io::Read;
use std::path::Path;

use crate::{Error, MAX_CONFIG_FILE_SIZE};

/// Reads a configuration file, refusing one larger than
/// [`MAX_CONFIG_FILE_SIZE`] without reading all of it.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    let read_error = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut contents = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut contents)
        .map_err(read_error)?;
    check_size(&path.display().to_string(), &contents)?;
    Ok(contents)
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
