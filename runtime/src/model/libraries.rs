//! Loading compiled mechanism libraries into a model: NEURON's
//! `nrn_load_dll`, with namespaces, idempotent loads, unloading and reloading
//! a rebuilt library.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Model;
use crate::mechanism::{KeepAlive, Owner};
use crate::plugin::{self, LoadedLibrary};
use crate::{Error, Result};

/// A library loaded into one model.
#[derive(Debug)]
pub(crate) struct ModelLibrary {
    pub namespace: String,
    pub lib: Arc<LoadedLibrary>,
    /// The model's mechanism indices of its mechanisms.
    pub mechs: Vec<usize>,
}

/// What [`Model::libraries`] reports about a loaded library.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryInfo {
    /// The namespace (`ns` in `ns::name`).
    pub namespace: String,
    /// The canonical path of the library file.
    pub path: PathBuf,
    /// The mechanism names it defines.
    pub mechanisms: Vec<String>,
}

/// The folder name `nrnivmodl` uses for this machine's build output.
pub fn arch_dir() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        std::env::consts::ARCH
    }
}

/// The library file name `nrnivmodl-rs` writes on this platform.
pub fn library_file_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libnrnmech.dylib"
    } else {
        "libnrnmech.so"
    }
}

/// The default namespace of a library path: the file stem without `lib`,
/// or, for `<folder>/<arch>/libnrnmech.so`, the mod folder's name.
fn default_namespace(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("lib")
        .to_string();
    let ns = if stem == "libnrnmech" {
        let parent = path.parent();
        let arch = parent.and_then(|p| p.file_name()).and_then(|s| s.to_str());
        let folder = match arch {
            Some("x86_64" | "arm64" | "aarch64" | "i686" | "umac") => {
                parent.and_then(|p| p.parent())
            }
            _ => parent,
        };
        folder
            .and_then(|f| f.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or("nrnmech")
            .to_string()
    } else {
        stem.strip_prefix("lib").unwrap_or(&stem).to_string()
    };
    let ns: String = ns
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ns.is_empty() {
        "nrnmech".into()
    } else {
        ns
    }
}

impl Model {
    /// Loads a mechanism library built by `nrnivmodl-rs` (NEURON's
    /// `nrn_load_dll`) and registers its mechanisms, under a namespace
    /// derived from the path (the mod folder's name for
    /// `<folder>/x86_64/libnrnmech.so`). Returns the names to use for them.
    ///
    /// - Loading the same file again is a no-op that returns the same names.
    /// - A rebuilt file at the same path replaces the old build when no
    ///   section or point process of this model uses the old mechanisms;
    ///   otherwise the error names who does.
    /// - A mechanism is `name` when no other library of this model defines
    ///   `name`, and always `namespace::name`; built-ins keep their bare names.
    pub fn load_library(&mut self, path: &Path) -> Result<Vec<String>> {
        self.load_library_as(path, None)
    }

    /// [`Model::load_library`] with an explicit namespace.
    pub fn load_library_as(&mut self, path: &Path, namespace: Option<&str>) -> Result<Vec<String>> {
        let lib = plugin::open_library(path)?;
        if let Some(existing) = self.libraries.iter().find(|l| Arc::ptr_eq(&l.lib, &lib)) {
            return Ok(existing
                .mechs
                .iter()
                .map(|&m| self.mechs[m].spec.key())
                .collect());
        }
        if let Some(old) = self.libraries.iter().find(|l| l.lib.path == lib.path) {
            let ns = old.namespace.clone();
            self.unload_library(&ns).map_err(|e| Error::Library {
                reason: format!(
                    "{} was rebuilt since this model loaded it, and the old build is still in use: {e}",
                    lib.path.display()
                ),
            })?;
        }
        let ns = match namespace {
            Some(n) => n.to_string(),
            None => default_namespace(&lib.path),
        };
        if !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || ns.is_empty() {
            return Err(Error::Library {
                reason: format!("namespace `{ns}` must be an identifier"),
            });
        }
        if let Some(other) = self.libraries.iter().find(|l| l.namespace == ns) {
            return Err(Error::Library {
                reason: format!(
                    "namespace `{ns}` is already used by {}; load with another namespace",
                    other.lib.path.display()
                ),
            });
        }
        let mut mechs = Vec::new();
        for spec in &lib.specs {
            let mut s = spec.clone();
            s.library = Some(ns.clone());
            s.keepalive = Some(KeepAlive(lib.clone()));
            match self.register(s) {
                Ok(id) => mechs.push(id as usize),
                Err(e) => {
                    // Undo the partial load.
                    for &m in &mechs {
                        self.forget_mechanism(m);
                    }
                    return Err(Error::Library {
                        reason: format!("{}: {e}", lib.path.display()),
                    });
                }
            }
        }
        let names = mechs.iter().map(|&m| self.mechs[m].spec.key()).collect();
        self.libraries.push(ModelLibrary {
            namespace: ns,
            lib,
            mechs,
        });
        Ok(names)
    }

    /// Loads `<arch>/libnrnmech.so` (`.dylib` on macOS) from `dir` if it
    /// exists, as NEURON does for the working directory at start-up.
    /// Returns `None` when there is no such file.
    pub fn load_default_library(&mut self, dir: &Path) -> Result<Option<Vec<String>>> {
        let path = dir.join(arch_dir()).join(library_file_name());
        if !path.exists() {
            return Ok(None);
        }
        self.load_library(&path).map(Some)
    }

    /// Unloads a library from this model. Fails, naming the sections and
    /// point processes, while any of its mechanisms has instances here. The
    /// library file itself is closed when no model uses it any more.
    pub fn unload_library(&mut self, namespace: &str) -> Result<()> {
        let k = self
            .libraries
            .iter()
            .position(|l| l.namespace == namespace)
            .ok_or_else(|| Error::Library {
                reason: format!("no library with namespace `{namespace}` is loaded in this model"),
            })?;
        let mut users = Vec::new();
        for &m in &self.libraries[k].mechs {
            for owner in &self.mechs[m].owners {
                let who = match owner {
                    Owner::Segment { sec, .. } => format!("section {}", self.sec_at(*sec).name),
                    Owner::Point { slot } => {
                        format!("a {} point process (slot {slot})", self.mechs[m].spec.name)
                    }
                };
                if !users.contains(&who) {
                    users.push(who);
                }
            }
        }
        if !users.is_empty() {
            return Err(Error::Library {
                reason: format!(
                    "library `{namespace}` ({}) is still used by this model: {}",
                    self.libraries[k].lib.path.display(),
                    users.join(", ")
                ),
            });
        }
        let lib = self.libraries.remove(k);
        for m in lib.mechs {
            self.forget_mechanism(m);
        }
        self.dirty = true;
        Ok(())
    }

    /// The libraries loaded in this model, in load order.
    pub fn libraries(&self) -> Vec<LibraryInfo> {
        self.libraries
            .iter()
            .map(|l| LibraryInfo {
                namespace: l.namespace.clone(),
                path: l.lib.path.clone(),
                mechanisms: l
                    .mechs
                    .iter()
                    .map(|&m| self.mechs[m].spec.name.clone())
                    .collect(),
            })
            .collect()
    }

    /// Makes an instance-less mechanism unreachable and drops its code: its
    /// names are removed and its spec loses its kernels and keep-alive (the
    /// slot stays, so other mechanism indices do not move).
    fn forget_mechanism(&mut self, m: usize) {
        let key = self.mechs[m].spec.key();
        self.mech_by_name.remove(&key);
        let name = self.mechs[m].spec.name.clone();
        if let Some(v) = self.lib_names.get_mut(&name) {
            v.retain(|&x| x != m);
            if v.is_empty() {
                self.lib_names.remove(&name);
            }
        }
        let spec = &mut self.mechs[m].spec;
        spec.kernels = Default::default();
        spec.keepalive = None;
        spec.name = format!("#unloaded{m}");
        spec.library = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_come_from_the_mod_folder() {
        assert_eq!(
            default_namespace(Path::new("/home/u/model/channels/x86_64/libnrnmech.so")),
            "channels"
        );
        assert_eq!(default_namespace(Path::new("/tmp/libcad.so")), "cad");
        assert_eq!(
            default_namespace(Path::new("/tmp/my-mods/libnrnmech.so")),
            "my_mods"
        );
    }
}
