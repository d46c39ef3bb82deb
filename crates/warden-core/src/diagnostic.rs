//! Errors in user-written files, located as `file:line:col` with a hint.

use std::fmt;

/// One problem in a configuration file (scope card, `warden.toml`, Cedar policy).
///
/// Rendered as `path:line:col: error: message` followed by an optional `hint:` line, the
/// way compilers report, so editors and CI logs can jump to the spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    /// 1-based line; 0 when the problem has no position (a missing file, say).
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl FileError {
    /// An error at a byte offset of `source`.
    pub fn at(file: &str, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, col) = line_col(source, offset);
        Self {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            hint: None,
        }
    }

    /// An error about the file as a whole.
    pub fn whole(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line: 0,
            col: 0,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.col, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All the problems found in a project, so `warden check` can report them in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileErrors(pub Vec<FileError>);

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

/// 1-based line and column (in characters) of a byte offset; offsets past the end or inside
/// a character are clamped.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = source.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, col)
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Turn a `toml` deserialisation error into a located [`FileError`], with a "did you mean"
/// hint for unknown keys and the accepted values for bad enumerations.
pub fn from_toml_error(file: &str, source: &str, err: &toml::de::Error) -> FileError {
    let message = err.message().trim().to_string();
    let offset = err.span().map_or(0, |s| s.start);
    let mut out = FileError::at(file, source, offset, message.clone());
    if err.span().is_none() {
        out.line = 1;
        out.col = 1;
    }
    // serde's wording: "unknown field `purpse`, expected one of `id`, `purpose`, ..."
    // and "unknown variant `maybe`, expected one of `auto`, `review`, ...".
    for kind in ["unknown field", "unknown variant"] {
        if let Some(rest) = message.strip_prefix(kind) {
            let words: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
            if let Some((bad, expected)) = words.split_first() {
                let hint = match closest(bad, expected.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None if expected.is_empty() => "this table takes no keys".to_string(),
                    None if kind == "unknown field" => {
                        "remove the key, or check the scope card reference in the README"
                            .to_string()
                    }
                    None => continue,
                };
                out = out.with_hint(hint);
            }
        }
    }
    if message.starts_with("missing field") {
        out = out.with_hint("add the key to this table; `warden init` writes a complete example");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 7), (2, 4));
        assert_eq!(line_col(s, 8), (3, 1));
        assert_eq!(line_col(s, 999), (3, 2));
    }

    #[test]
    fn closest_finds_typos_only() {
        let c = ["purpose", "owners", "environment"];
        assert_eq!(closest("purpse", c), Some("purpose"));
        assert_eq!(closest("enviroment", c), Some("environment"));
        assert_eq!(closest("zzz", c), None);
    }
}
