//! Image references and the image checks.

use std::fmt;

use rampart_core::value::str_field;
use rampart_core::{Check, CheckMeta, ObjectView, Violation};

use super::{ALL_CONTAINERS, containers, meta};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";

/// A parsed image reference, normalised like Docker's `ParseNormalizedNamed`
/// but borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host with its port; `docker.io` when implicit or written
    /// `index.docker.io`.
    pub registry: &'a str,
    /// Whether the repository is a Docker Hub official image, whose path gets
    /// an implicit `library/` (`nginx` → `docker.io/library/nginx`).
    pub library: bool,
    /// The repository path as written, without the registry (`nginx`, `org/app`).
    pub path: &'a str,
    pub tag: Option<&'a str>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Parses `[registry/]path[:tag][@digest]`; `None` when empty or malformed
    /// (empty tag, path or digest parts).
    pub fn parse(image: &'a str) -> Option<Self> {
        let (name_tag, digest) = match image.split_once('@') {
            Some((n, d)) => {
                let (alg, hex) = d.split_once(':')?;
                if alg.is_empty() || hex.is_empty() {
                    return None;
                }
                (n, Some(d))
            }
            None => (image, None),
        };
        // A colon after the last slash starts the tag; an earlier one is a port.
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(c) if last_slash.is_none_or(|s| c > s) => {
                (&name_tag[..c], Some(&name_tag[c + 1..]))
            }
            _ => (name_tag, None),
        };
        if tag == Some("") {
            return None;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if is_registry(first) => (first, rest),
            _ => (DOCKER_HUB, name),
        };
        if path.is_empty() || registry.is_empty() || path.split('/').any(str::is_empty) {
            return None;
        }
        let registry = if registry.eq_ignore_ascii_case(DOCKER_HUB_LEGACY) {
            DOCKER_HUB
        } else {
            registry
        };
        let library = registry.eq_ignore_ascii_case(DOCKER_HUB) && !path.contains('/');
        Some(Self {
            registry,
            library,
            path,
            tag,
            digest,
        })
    }

    /// Whether the reference names a fixed image: it has a digest.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// The normalised repository path's components (`library`, `nginx`).
    pub fn path_components(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.library
            .then_some("library")
            .into_iter()
            .chain(self.path.split('/'))
    }

    /// The normalised repository, `registry/path`, for display.
    pub fn repository(&self) -> impl fmt::Display + '_ {
        Repository(self)
    }
}

struct Repository<'r, 'a>(&'r ImageRef<'a>);

impl fmt::Display for Repository<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let library = if self.0.library { "library/" } else { "" };
        write!(f, "{}/{library}{}", self.0.registry, self.0.path)
    }
}

/// Docker's rule for whether the first component of a name is a registry.
fn is_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// `image-tag-latest`.
pub(super) struct ImageTagLatest;

impl Check for ImageTagLatest {
    fn meta(&self) -> &CheckMeta {
        &meta::IMAGE_TAG_LATEST
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        for c in containers(pod.spec, ALL_CONTAINERS) {
            let Some(image) = str_field(c.value, "image") else {
                continue;
            };
            let Some(r) = ImageRef::parse(image) else {
                continue;
            };
            let problem = match r.tag {
                _ if r.is_pinned() => continue,
                None => "has no tag, so it means :latest",
                Some("latest") => "uses the :latest tag",
                Some(_) => continue,
            };
            out.push(Violation::new(
                meta::IMAGE_TAG_LATEST.id.clone(),
                format!("{c} image {image:?} {problem}"),
                c.path(pod).key("image"),
            ));
        }
    }
}

/// One entry of the allow-list, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowEntry {
    /// Lower-cased registry host.
    registry: String,
    /// Repository path prefix components; empty for a whole registry.
    path: Vec<String>,
}

impl AllowEntry {
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        let entry = entry
            .strip_prefix("https://")
            .or_else(|| entry.strip_prefix("http://"))
            .unwrap_or(entry);
        let mut parts = entry.split('/').filter(|p| !p.is_empty());
        let registry = parts.next()?.to_ascii_lowercase();
        let registry = if registry == DOCKER_HUB_LEGACY {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        Some(Self {
            registry,
            path: parts.map(str::to_owned).collect(),
        })
    }

    fn allows(&self, image: &ImageRef<'_>) -> bool {
        if !self.registry.eq_ignore_ascii_case(image.registry) {
            return false;
        }
        let mut components = image.path_components();
        self.path
            .iter()
            .all(|want| components.next() == Some(want.as_str()))
    }
}

/// `image-registry-not-allowed`.
pub(super) struct RegistryAllowList {
    entries: Vec<AllowEntry>,
}

impl RegistryAllowList {
    /// `None` when no entry is usable: the check is off.
    pub(super) fn new(allowed: &[String]) -> Option<Self> {
        let entries: Vec<_> = allowed
            .iter()
            .filter_map(|e| AllowEntry::parse(e))
            .collect();
        (!entries.is_empty()).then_some(Self { entries })
    }

    fn allows(&self, image: &ImageRef<'_>) -> bool {
        self.entries.iter().any(|e| e.allows(image))
    }
}

impl Check for RegistryAllowList {
    fn meta(&self) -> &CheckMeta {
        &meta::IMAGE_REGISTRY_NOT_ALLOWED
    }

    fn check(&self, object: &ObjectView<'_>, out: &mut Vec<Violation>) {
        let Some(pod) = &object.pod else { return };
        for c in containers(pod.spec, ALL_CONTAINERS) {
            let Some(image) = str_field(c.value, "image") else {
                continue;
            };
            let Some(r) = ImageRef::parse(image) else {
                continue;
            };
            if self.allows(&r) {
                continue;
            }
            out.push(Violation::new(
                meta::IMAGE_REGISTRY_NOT_ALLOWED.id.clone(),
                format!(
                    "{c} image {image:?} comes from {}, which no allowed registry covers",
                    r.repository()
                ),
                c.path(pod).key("image"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(image: &str) -> Option<(String, Option<&str>, Option<&str>)> {
        ImageRef::parse(image).map(|r| (r.repository().to_string(), r.tag, r.digest))
    }

    #[test]
    fn parses_references_like_docker() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("nginx", "docker.io/library/nginx", None, None),
            ("nginx:1.27", "docker.io/library/nginx", Some("1.27"), None),
            (
                "bitnami/redis:7",
                "docker.io/bitnami/redis",
                Some("7"),
                None,
            ),
            ("docker.io/nginx", "docker.io/library/nginx", None, None),
            (
                "index.docker.io/nginx:latest",
                "docker.io/library/nginx",
                Some("latest"),
                None,
            ),
            ("registry:5000/ns/app", "registry:5000/ns/app", None, None),
            (
                "registry:5000/ns/app:2",
                "registry:5000/ns/app",
                Some("2"),
                None,
            ),
            ("localhost/app", "localhost/app", None, None),
            ("Registry/app", "Registry/app", None, None),
            (
                "ghcr.io/org/team/app:v1",
                "ghcr.io/org/team/app",
                Some("v1"),
                None,
            ),
            (
                "app@sha256:abc",
                "docker.io/library/app",
                None,
                Some("sha256:abc"),
            ),
            (
                "app:1.2@sha256:abc",
                "docker.io/library/app",
                Some("1.2"),
                Some("sha256:abc"),
            ),
            ("[::1]:5000/app", "[::1]:5000/app", None, None),
        ];
        for &(image, repo, tag, digest) in cases {
            assert_eq!(
                parts(image),
                Some((repo.to_owned(), tag, digest)),
                "{image}"
            );
        }
        for bad in [
            "",
            "app:",
            "app@",
            "app@sha256:",
            "/app",
            "ghcr.io/",
            "a//b",
        ] {
            assert_eq!(parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn allow_list_entries_match_hosts_and_whole_path_components() {
        let list = RegistryAllowList::new(&[
            "GHCR.io/myorg/".to_owned(),
            "registry.local:5000".to_owned(),
            "https://index.docker.io/library".to_owned(),
            "  ".to_owned(),
        ])
        .unwrap();
        let allowed = |image: &str| list.allows(&ImageRef::parse(image).unwrap());
        assert!(allowed("ghcr.io/myorg/app:1"));
        assert!(allowed("ghcr.io/myorg/team/app:1"));
        assert!(!allowed("ghcr.io/myorg-evil/app:1"));
        assert!(!allowed("ghcr.io/other/app:1"));
        assert!(allowed("registry.local:5000/anything/here"));
        assert!(!allowed("registry.local/app"));
        assert!(!allowed("registry.local:5001/app"));
        assert!(allowed("nginx"));
        assert!(allowed("docker.io/library/nginx"));
        assert!(!allowed("bitnami/redis"));
        assert!(RegistryAllowList::new(&[]).is_none());
        assert!(RegistryAllowList::new(&[" ".to_owned()]).is_none());
    }
}
