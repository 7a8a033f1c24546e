//! Default requests and limits for containers that set none.

use std::fmt;

use serde_json::Value;

/// CPU and memory quantities, as Kubernetes writes them (`100m`, `128Mi`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Quantities {
    pub cpu: String,
    pub memory: String,
}

impl Quantities {
    pub fn get(&self, resource: &str) -> Option<&str> {
        match resource {
            "cpu" => Some(&self.cpu),
            "memory" => Some(&self.memory),
            _ => None,
        }
    }
}

/// Requests and limits given to containers that lack them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ResourceProfile {
    pub name: String,
    pub requests: Quantities,
    pub limits: Quantities,
}

/// The built-in profiles: `small`, `medium` and `large`.
pub const BUILT_IN: &[(&str, [&str; 4])] = &[
    ("small", ["100m", "128Mi", "500m", "256Mi"]),
    ("medium", ["250m", "256Mi", "1", "512Mi"]),
    ("large", ["500m", "512Mi", "2", "1Gi"]),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError(pub String);

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProfileError {}

impl ResourceProfile {
    pub fn built_in(name: &str) -> Option<Self> {
        let (name, [rc, rm, lc, lm]) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Some(Self {
            name: (*name).to_owned(),
            requests: Quantities {
                cpu: (*rc).to_owned(),
                memory: (*rm).to_owned(),
            },
            limits: Quantities {
                cpu: (*lc).to_owned(),
                memory: (*lm).to_owned(),
            },
        })
    }

    /// Reads a profile file:
    ///
    /// ```yaml
    /// requests: {cpu: 100m, memory: 128Mi}
    /// limits: {cpu: 500m, memory: 256Mi}
    /// ```
    pub fn from_yaml(name: &str, text: &str) -> Result<Self, ProfileError> {
        let err = |m: String| ProfileError(format!("resource profile {name}: {m}"));
        let value: Value = serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?;
        let section = |key: &str| -> Result<Quantities, ProfileError> {
            let map = value
                .get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| err(format!("`{key}` must be a mapping with cpu and memory")))?;
            if let Some(other) = map.keys().find(|k| *k != "cpu" && *k != "memory") {
                return Err(err(format!("`{key}.{other}`: only cpu and memory are set")));
            }
            let get = |resource: &str| -> Result<String, ProfileError> {
                let text = match map.get(resource) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return Err(err(format!("`{key}.{resource}` is missing"))),
                };
                quantity(&text).ok_or_else(|| {
                    err(format!("`{key}.{resource}`: {text:?} is not a quantity"))
                })?;
                Ok(text)
            };
            Ok(Quantities {
                cpu: get("cpu")?,
                memory: get("memory")?,
            })
        };
        if let Some(obj) = value.as_object()
            && let Some(other) = obj.keys().find(|k| *k != "requests" && *k != "limits")
        {
            return Err(err(format!("unknown field `{other}`")));
        }
        let profile = Self {
            name: name.to_owned(),
            requests: section("requests")?,
            limits: section("limits")?,
        };
        for resource in ["cpu", "memory"] {
            let request = profile.requests.get(resource).and_then(quantity);
            let limit = profile.limits.get(resource).and_then(quantity);
            if request > limit {
                return Err(err(format!("the {resource} request is above its limit")));
            }
        }
        Ok(profile)
    }
}

/// The value of a Kubernetes quantity (`100m` is 0.1, `1Gi` is 2^30), for
/// comparisons. `None` when it is not one.
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => {
            let e: i32 = exp.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(value * scale)
}

/// The value of a quantity given as a JSON string or number.
pub fn quantity_of(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(quantity("100m"), Some(0.1));
        assert_eq!(quantity("1"), Some(1.0));
        assert_eq!(quantity("1.5"), Some(1.5));
        assert_eq!(quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("2G"), Some(2e9));
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("1Xi"), None);
        assert!(quantity("1Gi") > quantity("1G"));
    }

    #[test]
    fn built_in_and_file_profiles() {
        let small = ResourceProfile::built_in("small").unwrap();
        assert_eq!(small.limits.cpu, "500m");
        assert!(ResourceProfile::built_in("huge").is_none());
        let p = ResourceProfile::from_yaml(
            "p.yaml",
            "requests: {cpu: 1, memory: 1Gi}\nlimits:\n  cpu: \"2\"\n  memory: 2Gi\n",
        )
        .unwrap();
        assert_eq!(p.requests.cpu, "1");
        assert_eq!(p.limits.memory, "2Gi");
        for bad in [
            "requests: {cpu: 1}\nlimits: {cpu: 1, memory: 1Gi}\n",
            "requests: {cpu: 2, memory: 1Gi}\nlimits: {cpu: 1, memory: 1Gi}\n",
            "requests: {cpu: x, memory: 1Gi}\nlimits: {cpu: 1, memory: 1Gi}\n",
            "requests: {cpu: 1, memory: 1Gi, gpu: 1}\nlimits: {cpu: 1, memory: 1Gi}\n",
            "request: {}\n",
        ] {
            assert!(ResourceProfile::from_yaml("p", bad).is_err(), "{bad}");
        }
    }
}
