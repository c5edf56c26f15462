//! Source files and byte-offset spans.
//!
//! Every file the front end reads (the main `.mod` file, each INCLUDEd file, or
//! an in-memory string) is added once to a [`SourceMap`] and gets a [`FileId`].
//! AST nodes and diagnostics carry a [`Span`]: a file and a half-open byte range
//! in that file's text. Lines and columns are computed only when rendering.

use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`]. Cheap to copy; valid only for the map
/// that handed it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` in one source file.
///
/// Offsets are byte offsets into the (lossily decoded, UTF-8) text stored in
/// the [`SourceMap`], and always lie on character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file this range belongs to.
    pub file: FileId,
    /// Byte offset of the first byte.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// Makes a span; `start` and `end` are byte offsets into `file`'s text.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering `self` and `other` (which must be in the same
    /// file; if not, `self` is returned unchanged).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True for an empty range (used for "expected something here" positions).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Spans serialize as the compact string `"start..end"` so that AST snapshots
/// stay readable. The file is implied by the enclosing module.
impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}..{}", self.start, self.end))
    }
}

/// One source file: its display name, its path on disk (if any), its text and
/// the byte offset of every line start.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics (the path as given by the user).
    pub name: String,
    /// The path on disk, `None` for in-memory sources.
    pub path: Option<PathBuf>,
    /// The full text (lossily decoded UTF-8).
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// Number of lines (a trailing newline does not start an extra line
    /// unless text follows it).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 1-based line and 1-based column (in characters) of a byte offset.
    /// Offsets past the end are clamped to the end of the text.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let line = match self.line_starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let mut col_end = offset;
        while !self.text.is_char_boundary(col_end) {
            col_end -= 1;
        }
        let col = self.text[start..col_end].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its line terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }
}

/// All files read during one front-end run. Files are never removed, so a
/// [`FileId`] stays valid for the map's lifetime.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file's text under a display name and returns its id. Called by the
    /// driver for every file it reads and by `check_source` for in-memory text.
    pub fn add(&mut self, name: impl Into<String>, path: Option<&Path>, text: String) -> FileId {
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            name: name.into(),
            path: path.map(Path::to_path_buf),
            text,
            line_starts,
        });
        id
    }

    /// The file with this id. Panics only on an id from another map, which is
    /// a programming error, never an input error.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The file with this id, or `None` when the id is not from this map.
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// All files, in the order they were added.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The id of the file already added from `path`, if any.
    pub fn find_path(&self, path: &Path) -> Option<FileId> {
        self.files()
            .find(|(_, f)| f.path.as_deref() == Some(path))
            .map(|(id, _)| id)
    }

    /// The source text a span covers (empty if the span is out of range).
    pub fn text(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text.get(span.start as usize..span.end as usize))
            .unwrap_or("")
    }

    /// 1-based (line, column) of the start of a span.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        self.file(span.file).line_col(span.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based_and_counts_chars() {
        let mut map = SourceMap::new();
        let id = map.add("a.mod", None, "ab\nµx y\n".to_string());
        let f = map.file(id);
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        // 'x' follows the two-byte µ: byte 5, column 2.
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_text(2), "µx y");
        assert_eq!(f.line_col(1000), (3, 1));
    }
}
