//! The simulated containers' filesystems: one in-memory tree per (namespace, pod, container),
//! a map from absolute path to bytes plus the directories that exist (parents of files are
//! implied).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Directories every simulated container starts with.
const BASE_DIRS: [&str; 8] = [
    "/bin", "/etc", "/home", "/root", "/tmp", "/usr", "/var", "/var/tmp",
];

/// Every container's filesystem, created on first use.
#[derive(Debug, Default)]
pub(crate) struct FileSystems {
    by_container: HashMap<(String, String, String), Fs>,
}

impl FileSystems {
    /// The filesystem of `namespace/pod`'s `container`.
    pub(crate) fn get_mut(&mut self, namespace: &str, pod: &str, container: &str) -> &mut Fs {
        self.by_container
            .entry((namespace.to_owned(), pod.to_owned(), container.to_owned()))
            .or_default()
    }

    /// The filesystem of `namespace/pod`'s `container`, when it was ever used.
    pub(crate) fn get(&self, namespace: &str, pod: &str, container: &str) -> Option<&Fs> {
        self.by_container
            .get(&(namespace.to_owned(), pod.to_owned(), container.to_owned()))
    }
}

/// One container's files.
#[derive(Debug)]
pub(crate) struct Fs {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
}

impl Default for Fs {
    fn default() -> Self {
        let mut dirs: BTreeSet<String> = BASE_DIRS.iter().map(|d| (*d).to_owned()).collect();
        dirs.insert("/".to_owned());
        Self {
            files: BTreeMap::new(),
            dirs,
        }
    }
}

/// `path` made absolute (relative to `/`, the working directory) with `.`, `..` and repeated
/// slashes resolved; `..` at the root stays at the root, as in a real filesystem.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `dir/name` for an absolute, normalized `dir`.
pub(crate) fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

impl Fs {
    /// The contents of the regular file at `path`.
    pub(crate) fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(&normalize(path)).map(Vec::as_slice)
    }

    /// Whether `path` is a directory (made, a base one, or the parent of a file).
    pub(crate) fn is_dir(&self, path: &str) -> bool {
        let path = normalize(path);
        if self.dirs.contains(&path) {
            return true;
        }
        let prefix = format!("{path}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
            || self
                .dirs
                .range(prefix.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&prefix))
    }

    /// Writes a regular file, making its parent directories.
    ///
    /// # Errors
    /// The message `tar` or a shell would print, when `path` is a directory or a parent is a file.
    pub(crate) fn write(&mut self, path: &str, contents: Vec<u8>) -> Result<(), String> {
        let path = normalize(path);
        if self.is_dir(&path) {
            return Err(format!("{path}: Is a directory"));
        }
        self.make_dirs(parent(&path))?;
        self.files.insert(path, contents);
        Ok(())
    }

    /// Makes `path` and its parents directories.
    ///
    /// # Errors
    /// When one of them is a regular file.
    pub(crate) fn make_dirs(&mut self, path: &str) -> Result<(), String> {
        let path = normalize(path);
        let mut current = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current.push('/');
            current.push_str(part);
            if self.files.contains_key(&current) {
                return Err(format!("{current}: Not a directory"));
            }
            self.dirs.insert(current.clone());
        }
        Ok(())
    }

    /// The names directly inside directory `path`, sorted.
    pub(crate) fn list(&self, path: &str) -> Vec<String> {
        let path = normalize(path);
        let prefix = if path == "/" {
            path.clone()
        } else {
            format!("{path}/")
        };
        let children = self
            .files
            .keys()
            .chain(self.dirs.iter())
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty())
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned());
        children.collect::<BTreeSet<String>>().into_iter().collect()
    }

    /// Every regular file and directory below directory `path` (not `path` itself), sorted,
    /// each with its contents (`None` for a directory).
    pub(crate) fn walk(&self, path: &str) -> Vec<(String, Option<&[u8]>)> {
        let path = normalize(path);
        let prefix = if path == "/" {
            path.clone()
        } else {
            format!("{path}/")
        };
        let mut out: BTreeMap<String, Option<&[u8]>> = BTreeMap::new();
        for (p, data) in self.files.range(prefix.clone()..) {
            if !p.starts_with(&prefix) {
                break;
            }
            out.insert(p.clone(), Some(data.as_slice()));
            let mut dir = parent(p);
            while dir.len() > path.len() {
                out.entry(dir.to_owned()).or_insert(None);
                dir = parent(dir);
            }
        }
        for d in self.dirs.range(prefix.clone()..) {
            if !d.starts_with(&prefix) {
                break;
            }
            out.entry(d.clone()).or_insert(None);
        }
        out.into_iter().collect()
    }
}

/// The parent directory of an absolute, normalized path (`/` for `/`).
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_and_directories_are_implied() {
        assert_eq!(normalize("a//b/./c/../d"), "/a/b/d");
        assert_eq!(normalize("/../../etc"), "/etc");
        let mut fs = Fs::default();
        fs.write("/srv/app/config.yaml", b"x".to_vec()).unwrap();
        assert!(fs.is_dir("/srv") && fs.is_dir("/srv/app") && fs.is_dir("/tmp"));
        assert!(!fs.is_dir("/srv/app/config.yaml") && !fs.is_dir("/sr"));
        assert_eq!(fs.list("/srv"), vec!["app"]);
        assert!(fs.write("/srv/app", Vec::new()).is_err());
        assert!(fs.write("/srv/app/config.yaml/x", Vec::new()).is_err());
        let walked: Vec<String> = fs.walk("/srv").into_iter().map(|(p, _)| p).collect();
        assert_eq!(walked, vec!["/srv/app", "/srv/app/config.yaml"]);
    }
}
