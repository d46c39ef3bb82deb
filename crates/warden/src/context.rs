//! What every command is given: the project directory and the region it works on. Passed to
//! the commands explicitly (no process-wide state), so a command that visits several stores
//! (`each_store`) runs once per store with a context of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use warden_core::config::WardenConfig;
use warden_core::project::Project;
use warden_core::FileErrors;
use warden_gateway::project_store::{self, ProjectStore, ProjectStoreError};

/// The project and the store a command works on.
#[derive(Debug, Clone)]
pub struct Context {
    /// The project directory (`--project`).
    project: PathBuf,
    /// `--region`: the region whose store this command reads and writes (`None`: the home
    /// store of `[store]`).
    region: Option<String>,
}

impl Context {
    /// A context for the project in `project`, on `region`'s store.
    pub fn new(project: PathBuf, region: Option<String>) -> Self {
        Self { project, region }
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        &self.project
    }

    /// The region selected with `--region`, if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The same project on another region's store.
    pub fn in_region(&self, region: Option<String>) -> Self {
        Self {
            project: self.project.clone(),
            region,
        }
    }

    /// warden.toml alone, pointed at the selected region's store (auditing must work even
    /// when a card or policy does not compile).
    pub fn read_config(&self) -> anyhow::Result<WardenConfig> {
        project_store::read_config(&self.project, self.region()).map_err(|e| match e {
            // The library names the file; the CLI adds the flag that points elsewhere.
            ProjectStoreError::ReadConfig { path, source } => anyhow::Error::new(source)
                .context(format!("reading {} (pass --project DIR)", path.display())),
            e => e.into(),
        })
    }

    /// Load the project, pointed at the selected region's store.
    pub fn load_dir(&self) -> Result<Project, FileErrors> {
        project_store::load_project(&self.project, self.region())
    }

    /// Load the project or print its located errors.
    pub fn load(&self) -> Result<Project, ExitCode> {
        self.load_dir().map_err(|e: FileErrors| {
            eprintln!("{e}");
            eprintln!(
                "\n{} problem{} found in {}",
                e.0.len(),
                if e.0.len() == 1 { "" } else { "s" },
                self.project.display()
            );
            ExitCode::FAILURE
        })
    }

    /// The selected store opened read-only, which must already hold records.
    pub async fn open_existing(&self) -> anyhow::Result<warden_store::Store> {
        let config = self.read_config()?;
        Ok(project_store::open_existing(&self.project, &config).await?)
    }

    /// The selected store opened as its writer (signing checkpoints), which must already
    /// hold records.
    pub async fn open_existing_signing(&self) -> anyhow::Result<(WardenConfig, ProjectStore)> {
        let config = self.read_config()?;
        let writer = ProjectStore::open_existing(&self.project, &config).await?;
        Ok((config, writer))
    }
}
