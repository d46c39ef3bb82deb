//! Read a project directory: `warden.toml`, `agents/*.toml`, `policies/*.cedar`.

use std::path::{Path, PathBuf};

use warden_core::project::{load_project, Project, ProjectSources};
use warden_core::{FileError, FileErrors, SourceFile};

/// Read every file of the project (paths in errors are relative to `dir`) and compile it.
pub fn load_dir(dir: &Path) -> Result<Project, FileErrors> {
    load_project(&read_sources(dir)?)
}

/// Read the project's files without compiling them.
pub fn read_sources(dir: &Path) -> Result<ProjectSources, FileErrors> {
    let config_path = dir.join("warden.toml");
    let config = match std::fs::read_to_string(&config_path) {
        Ok(text) => SourceFile {
            path: "warden.toml".into(),
            text,
        },
        Err(e) => {
            return Err(FileErrors(vec![FileError::whole(
                &config_path.display().to_string(),
                format!("cannot read the project's settings: {e}"),
            )
            .with_hint(
                "run `warden init DIR` to create a project, or pass --project DIR",
            )]))
        }
    };
    let mut errors = Vec::new();
    let cards = read_all(dir, "agents", "toml", &mut errors);
    let policies = read_all(dir, "policies", "cedar", &mut errors);
    if !errors.is_empty() {
        return Err(FileErrors(errors));
    }
    Ok(ProjectSources {
        config,
        cards,
        policies,
    })
}

fn read_all(dir: &Path, sub: &str, ext: &str, errors: &mut Vec<FileError>) -> Vec<SourceFile> {
    let folder = dir.join(sub);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&folder) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext) && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            errors.push(FileError::whole(
                sub,
                format!("cannot list {}: {e}", folder.display()),
            ));
            Vec::new()
        }
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let rel = format!(
            "{sub}/{}",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        match std::fs::read_to_string(&p) {
            Ok(text) => out.push(SourceFile { path: rel, text }),
            Err(e) => errors.push(FileError::whole(&rel, format!("cannot read: {e}"))),
        }
    }
    out
}
