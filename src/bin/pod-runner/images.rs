//! The image table: which local folder of programs stands in for a container image.
//!
//! `POD_RUNNER_IMAGES="repo=bindir,repo2=bindir2"` maps an image repository (the image reference
//! without its tag or digest) to a folder that is put first on `PATH` for that container. An
//! image without an entry runs its command as given, with the host's programs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Repository to bin-dir pairs, parsed from `POD_RUNNER_IMAGES` or the images file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageTable {
    entries: BTreeMap<String, PathBuf>,
}

/// A malformed `repo=bindir` pair.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("image table entry {entry:?} is not of the form repository=bin-dir")]
pub struct ParseImageTable {
    /// The offending entry.
    pub entry: String,
}

impl ImageTable {
    /// Parses `repo=bindir` pairs separated by commas or newlines; blank entries and lines
    /// starting with `#` are ignored. A later entry for the same repository wins.
    pub fn parse(text: &str) -> Result<Self, ParseImageTable> {
        let mut entries = BTreeMap::new();
        for raw in text.split([',', '\n']) {
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let Some((repo, dir)) = entry.split_once('=') else {
                return Err(ParseImageTable {
                    entry: entry.to_owned(),
                });
            };
            let (repo, dir) = (repo.trim(), dir.trim());
            if repo.is_empty() || dir.is_empty() {
                return Err(ParseImageTable {
                    entry: entry.to_owned(),
                });
            }
            entries.insert(repository_of(repo).to_owned(), PathBuf::from(dir));
        }
        Ok(Self { entries })
    }

    /// Adds the entries of `other`, which win over this table's.
    pub fn merged(mut self, other: Self) -> Self {
        self.entries.extend(other.entries);
        self
    }

    /// The bin-dir for `image`, if its repository has an entry.
    pub fn bin_dir(&self, image: &str) -> Option<&Path> {
        self.entries.get(repository_of(image)).map(PathBuf::as_path)
    }
}

/// The repository part of an image reference: without `@digest` and without `:tag` (a colon
/// that belongs to a registry port, as in `localhost:5000/agent`, is kept).
pub fn repository_of(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(repo, _)| repo);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_registry_port() {
        assert_eq!(repository_of("busybox"), "busybox");
        assert_eq!(repository_of("busybox:1.36"), "busybox");
        assert_eq!(
            repository_of("ghcr.io/acme/agent:v1@sha256:abc"),
            "ghcr.io/acme/agent"
        );
        assert_eq!(
            repository_of("ghcr.io/acme/agent@sha256:abc"),
            "ghcr.io/acme/agent"
        );
        assert_eq!(
            repository_of("localhost:5000/agent"),
            "localhost:5000/agent"
        );
        assert_eq!(
            repository_of("localhost:5000/agent:dev"),
            "localhost:5000/agent"
        );
    }

    #[test]
    fn table_maps_any_tag_of_a_repository_to_its_bin_dir() {
        let table =
            ImageTable::parse("ghcr.io/acme/agent=/opt/venv/bin, busybox:1.36=/bb\n").unwrap();
        assert_eq!(
            table.bin_dir("ghcr.io/acme/agent:0.1.0"),
            Some(Path::new("/opt/venv/bin"))
        );
        assert_eq!(table.bin_dir("busybox"), Some(Path::new("/bb")));
        assert_eq!(table.bin_dir("alpine:3"), None);
    }

    #[test]
    fn blank_entries_and_comments_are_ignored_and_later_entries_win() {
        let table = ImageTable::parse("# agent\n,a=/one,,\na=/two\n").unwrap();
        assert_eq!(table.bin_dir("a:latest"), Some(Path::new("/two")));
        let merged = table.merged(ImageTable::parse("a=/three").unwrap());
        assert_eq!(merged.bin_dir("a"), Some(Path::new("/three")));
    }

    #[test]
    fn entry_without_equals_or_with_empty_side_is_rejected() {
        for bad in ["busybox", "=/bin", "busybox="] {
            let err = ImageTable::parse(bad).unwrap_err();
            assert_eq!(err.entry, bad);
        }
    }
}
