//! Pod Security Standards levels and policy versions, parsed as
//! `k8s.io/pod-security-admission/api` parses them.

use std::fmt;
use std::str::FromStr;

/// The newest policy version with changes; later versions and `latest` evaluate as this one.
pub const NEWEST_MINOR: u32 = 37;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid Pod Security level {0:?}: must be one of privileged, baseline, restricted")]
    Level(String),
    #[error("invalid Pod Security version {0:?}: must be \"latest\" or \"v1.x\"")]
    Version(String),
}

impl FromStr for Level {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseError::Level(s.to_owned())),
        }
    }
}

/// A policy version: `v1.N` or `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Any minor upstream accepts: up to `i64::MAX`, Go's `strconv.Atoi` limit.
    Minor(u64),
    Latest,
}

impl Version {
    /// The minor version whose checks apply: versions newer than the newest
    /// policy change, and `latest`, evaluate as the newest.
    pub fn effective_minor(self) -> u32 {
        match self {
            Version::Minor(m) => m.min(u64::from(NEWEST_MINOR)) as u32,
            Version::Latest => NEWEST_MINOR,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Minor(m) => write!(f, "v1.{m}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;

    /// Accepts exactly what upstream's `^v1\.([0-9]|[1-9][0-9]*)$` accepts, plus `latest`;
    /// like upstream's `strconv.Atoi`, minors beyond `i64::MAX` are rejected.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let err = || ParseError::Version(s.to_owned());
        let minor = s.strip_prefix("v1.").ok_or_else(err)?;
        let canonical = !minor.is_empty()
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || !minor.starts_with('0'));
        if !canonical {
            return Err(err());
        }
        minor
            .parse::<i64>()
            .map(|m| Version::Minor(m.unsigned_abs()))
            .map_err(|_| err())
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_like_upstream() {
        assert_eq!("latest".parse(), Ok(Version::Latest));
        assert_eq!("v1.0".parse(), Ok(Version::Minor(0)));
        assert_eq!("v1.37".parse(), Ok(Version::Minor(37)));
        assert_eq!("v1.120".parse(), Ok(Version::Minor(120)));
        // Go's Atoi takes any int64; only larger minors are invalid.
        assert_eq!("v1.4294967296".parse(), Ok(Version::Minor(1 << 32)));
        assert_eq!(
            "v1.9223372036854775807".parse(),
            Ok(Version::Minor(i64::MAX as u64))
        );
        for bad in [
            "v1.01",
            "v2.0",
            "1.25",
            "v1.",
            "v1.x",
            "v1.+1",
            "v1.-1",
            "v1.9223372036854775808",
            "Latest",
            "",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn future_versions_evaluate_as_the_newest() {
        assert_eq!(Version::Minor(99).effective_minor(), NEWEST_MINOR);
        assert_eq!(Version::Latest.effective_minor(), NEWEST_MINOR);
        assert_eq!(Version::Minor(3).effective_minor(), 3);
        assert_eq!(Version::Minor(u64::MAX).effective_minor(), NEWEST_MINOR);
        assert_eq!(Version::Minor(1 << 32).to_string(), "v1.4294967296");
    }

    #[test]
    fn parses_levels() {
        assert_eq!("baseline".parse(), Ok(Level::Baseline));
        assert!("Baseline".parse::<Level>().is_err());
    }
}
