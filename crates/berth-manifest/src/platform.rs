//! Platforms (`linux/arm64/v8`), their normal forms, and choosing the best
//! manifest of an index for a platform, with containerd's rules.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::de;
use crate::descriptor::Descriptor;

/// The platform an image runs on: OS, CPU architecture and variant, as an
/// index entry or an image config states it.
///
/// The OS, architecture and variant are [`Cow`]s: the common names
/// (`linux`, `amd64`, `v8`...) are shared static strings, so parsing an
/// index does not allocate for them.
///
/// ```
/// use berth_manifest::Platform;
/// let p: Platform = "linux/arm64/v8".parse()?;
/// assert_eq!((&*p.os, &*p.architecture, p.variant.as_deref()), ("linux", "arm64", Some("v8")));
/// assert_eq!(p.to_string(), "linux/arm64/v8");
/// // containerd's matching: arm64 means arm64/v8; arm/v7 runs arm/v6.
/// assert!("linux/arm64".parse::<Platform>()?.matches(&p));
/// assert!("linux/arm/v7".parse::<Platform>()?.matches(&"linux/arm/v6".parse()?));
/// assert_eq!("Linux/x86_64".parse::<Platform>()?.normalized().to_string(), "linux/amd64");
/// # Ok::<(), berth_manifest::PlatformParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Platform {
    /// The CPU architecture (`amd64`, `arm64`, ...), as Go's `GOARCH`.
    #[serde(deserialize_with = "de::name")]
    pub architecture: Cow<'static, str>,
    /// The operating system (`linux`, `windows`, ...), as Go's `GOOS`.
    #[serde(deserialize_with = "de::name")]
    pub os: Cow<'static, str>,
    /// The OS version (Windows build: `10.0.17763.1234`).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Features the OS must have (`win32k`).
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub os_features: Vec<String>,
    /// The CPU variant (`v7`, `v8`).
    #[serde(
        default,
        deserialize_with = "de::optional_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<Cow<'static, str>>,
    /// CPU features (Docker manifest lists; reserved in OCI).
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub features: Vec<String>,
}

/// Why a platform string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformParseError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl fmt::Display for PlatformParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid platform {:?}: {}", self.input, self.problem)
    }
}

impl std::error::Error for PlatformParseError {}

impl Platform {
    /// A platform from its OS and architecture.
    pub fn new(os: impl AsRef<str>, architecture: impl AsRef<str>) -> Self {
        Platform {
            architecture: de::intern(architecture.as_ref()),
            os: de::intern(os.as_ref()),
            os_version: None,
            os_features: Vec::new(),
            variant: None,
            features: Vec::new(),
        }
    }

    /// This platform with a CPU variant.
    pub fn with_variant(mut self, variant: impl AsRef<str>) -> Self {
        self.variant = Some(de::intern(variant.as_ref()));
        self
    }

    /// This platform with an OS version.
    pub fn with_os_version(mut self, version: impl Into<String>) -> Self {
        self.os_version = Some(version.into());
        self
    }

    /// The platform this code was compiled for, in OCI's names
    /// (`linux/amd64`, `linux/arm64/v8`, `darwin/arm64/v8`).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        Platform::new(os, arch).normalized()
    }

    /// Whether this is `unknown/unknown`: an attestation or other entry
    /// that is not an image to run (buildx pushes these).
    pub fn is_unknown(&self) -> bool {
        self.os.eq_ignore_ascii_case("unknown") && self.architecture.eq_ignore_ascii_case("unknown")
    }

    /// The normal form, with containerd's rules: OS in lowercase (`macos`
    /// is `darwin`); `x86_64`/`x86-64` are `amd64` (and `amd64/v1` plain
    /// `amd64`); `aarch64` is `arm64`, whose default variant is `v8`;
    /// `arm` defaults to `v7`; `armhf` is `arm/v7`, `armel` `arm/v6`;
    /// `i386` is `386`.
    pub fn normalized(&self) -> Platform {
        let mut os = self.os.to_ascii_lowercase();
        if os == "macos" {
            os = "darwin".to_owned();
        }
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().unwrap_or("").to_ascii_lowercase();
        let (arch, variant): (&str, String) = match arch.as_str() {
            "i386" => ("386", String::new()),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64",
                if variant == "v1" {
                    String::new()
                } else {
                    variant
                },
            ),
            "aarch64" | "arm64" => (
                "arm64",
                match variant.as_str() {
                    "" | "8" | "v8" | "v8.0" => "v8".to_owned(),
                    "9" | "9.0" | "v9.0" => "v9".to_owned(),
                    _ => variant,
                },
            ),
            "armhf" => ("arm", "v7".to_owned()),
            "armel" => ("arm", "v6".to_owned()),
            "arm" => (
                "arm",
                match variant.as_str() {
                    "" | "7" => "v7".to_owned(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                },
            ),
            other => (other, variant),
        };
        Platform {
            architecture: de::intern(arch),
            os: de::intern(&os),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: (!variant.is_empty()).then(|| de::intern(&variant)),
            features: self.features.clone(),
        }
    }

    /// The (architecture, variant) pairs this platform runs, best first, as
    /// containerd's `platforms.Only` orders them: amd64/vN runs vN..v1 and
    /// 386; arm/vN runs vN..v5; arm64/v9.x runs v9.x..v9, v8.(x+5)..v8,
    /// then arm/v8..v5; arm64/v8.x runs v8.x..v8, then arm/v8..v5.
    pub fn compatible(&self) -> Vec<(String, Option<String>)> {
        let n = self.normalized();
        let mut out: Vec<(String, Option<String>)> = vec![(
            n.architecture.to_string(),
            n.variant.as_deref().map(str::to_owned),
        )];
        let variant_number = |v: &Option<Cow<'static, str>>| -> Option<u32> {
            v.as_deref()?.strip_prefix('v')?.parse().ok()
        };
        match &*n.architecture {
            "amd64" => {
                if let Some(level) = variant_number(&n.variant).filter(|&l| l > 1) {
                    for l in (2..level).rev() {
                        out.push(("amd64".into(), Some(format!("v{l}"))));
                    }
                    out.push(("amd64".into(), None));
                }
                out.push(("386".into(), None));
            }
            "arm" => {
                if let Some(level) = variant_number(&n.variant) {
                    for l in (5..level).rev() {
                        out.push(("arm".into(), Some(format!("v{l}"))));
                    }
                }
            }
            "arm64" => {
                let v = n.variant.as_deref().unwrap_or("v8");
                let (major, minor) = match v
                    .strip_prefix('v')
                    .map(|s| s.split_once('.').unwrap_or((s, "0")))
                {
                    Some((ma, mi)) => (ma.parse::<u32>().ok(), mi.parse::<u32>().ok()),
                    None => (None, None),
                };
                if let (Some(mut major), Some(mut minor)) = (major, minor)
                    && major >= 8
                {
                    let name = |ma: u32, mi: u32| {
                        if mi == 0 {
                            format!("v{ma}")
                        } else {
                            format!("v{ma}.{mi}")
                        }
                    };
                    if major >= 9 {
                        for mi in (0..minor).rev() {
                            out.push(("arm64".into(), Some(name(major, mi))));
                        }
                        // v9.0 diverged from v8.5: v9.x runs v8.(x+5), at most v8.9.
                        minor = (minor + 5).min(9);
                        major = 8;
                        out.push(("arm64".into(), Some(name(major, minor))));
                    }
                    for mi in (0..minor).rev() {
                        out.push(("arm64".into(), Some(name(major, mi))));
                    }
                    for l in (5..=8).rev() {
                        out.push(("arm".into(), Some(format!("v{l}"))));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// How well `candidate` suits this platform: `Some(0)` for an exact
    /// match, a larger number for a compatible lower variant, `None` when it
    /// cannot run here. `unknown/unknown` never matches.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        if candidate.is_unknown() {
            return None;
        }
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os {
            return None;
        }
        if want.os == "windows"
            && let (Some(a), Some(b)) = (&want.os_version, &have.os_version)
            && windows_build(a) != windows_build(b)
        {
            return None;
        }
        self.compatible().iter().position(|(arch, variant)| {
            *arch == have.architecture && variant.as_deref() == have.variant.as_deref()
        })
    }

    /// Whether an image for `candidate` runs on this platform.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }

    /// The best entry of `manifests` (an index's list) for this platform:
    /// the exact platform first, then the closest compatible one; the first
    /// listed wins a tie. `unknown/unknown` entries (attestations) are never
    /// chosen; an entry with no platform is chosen only when no entry
    /// matches, as containerd accepts such entries.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let mut best: Option<(usize, &'a Descriptor)> = None;
        for d in manifests {
            let rank = match &d.platform {
                Some(p) => self.rank(p),
                None if d.media_type.is_manifest_or_index() => Some(usize::MAX),
                None => None,
            };
            if let Some(r) = rank
                && best.is_none_or(|(b, _)| r < b)
            {
                best = Some((r, d));
            }
        }
        best.map(|(_, d)| d)
    }
}

/// `major.minor.build` of a Windows version: images must match the host's
/// build.
fn windows_build(v: &str) -> &str {
    let mut dots = v.match_indices('.').map(|(i, _)| i);
    match dots.nth(2) {
        Some(i) => &v[..i],
        None => v,
    }
}

impl fmt::Display for Platform {
    /// `os[(os.version)]/architecture[/variant]`, containerd's form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.os)?;
        if let Some(v) = &self.os_version {
            write!(f, "({v})")?;
        }
        write!(f, "/{}", self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    /// Parses `os/architecture[/variant]`, with an optional OS version in
    /// parentheses (`windows(10.0.17763)/amd64`). The text is kept as given;
    /// [`Platform::normalized`] gives the normal form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem| PlatformParseError {
            input: s.to_owned(),
            problem,
        };
        let mut parts = s.split('/');
        let os_part = parts.next().unwrap_or("");
        let arch = parts
            .next()
            .ok_or_else(|| err("expected os/architecture[/variant]"))?;
        let variant = parts.next();
        if parts.next().is_some() {
            return Err(err("more than three components"));
        }
        let (os, os_version) = match os_part.split_once('(') {
            Some((os, rest)) => {
                let v = rest
                    .strip_suffix(')')
                    .ok_or_else(|| err("unclosed '(' in the OS version"))?;
                if v.is_empty() || v.contains(['(', ')']) {
                    return Err(err("malformed OS version"));
                }
                (os, Some(v.to_owned()))
            }
            None => (os_part, None),
        };
        let good = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if os.is_empty() || !os.chars().all(good) {
            return Err(err("the OS must be letters, digits, '_', '-' or '.'"));
        }
        if arch.is_empty() || !arch.chars().all(good) {
            return Err(err(
                "the architecture must be letters, digits, '_', '-' or '.'",
            ));
        }
        if let Some(v) = variant
            && (v.is_empty() || !v.chars().all(good))
        {
            return Err(err("the variant must be letters, digits, '_', '-' or '.'"));
        }
        let mut p = Platform::new(os, arch);
        p.os_version = os_version;
        p.variant = variant.map(de::intern);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().expect("valid platform")
    }

    #[test]
    fn normal_forms() {
        for (input, want) in [
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64/v1", "linux/amd64"),
            ("linux/aarch64", "linux/arm64/v8"),
            ("linux/arm64/8", "linux/arm64/v8"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("MacOS/arm64", "darwin/arm64/v8"),
            ("Linux/ARM/6", "linux/arm/v6"),
        ] {
            assert_eq!(p(input).normalized().to_string(), want, "{input}");
        }
    }

    #[test]
    fn vectors() {
        let names = |s: &str| -> Vec<String> {
            p(s).compatible()
                .into_iter()
                .map(|(a, v)| v.map_or(a.clone(), |v| format!("{a}/{v}")))
                .collect()
        };
        assert_eq!(
            names("linux/amd64/v3"),
            ["amd64/v3", "amd64/v2", "amd64", "386"]
        );
        assert_eq!(names("linux/arm/v7"), ["arm/v7", "arm/v6", "arm/v5"]);
        assert_eq!(
            names("linux/arm64"),
            ["arm64/v8", "arm/v8", "arm/v7", "arm/v6", "arm/v5"]
        );
        assert_eq!(
            names("linux/arm64/v9.1"),
            [
                "arm64/v9.1",
                "arm64/v9",
                "arm64/v8.6",
                "arm64/v8.5",
                "arm64/v8.4",
                "arm64/v8.3",
                "arm64/v8.2",
                "arm64/v8.1",
                "arm64/v8",
                "arm/v8",
                "arm/v7",
                "arm/v6",
                "arm/v5"
            ]
        );
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "linux",
            "/amd64",
            "linux/",
            "linux/amd64/",
            "a/b/c/d",
            "linux(/amd64",
            "lin ux/amd64",
            "linux()/amd64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        let w = p("windows(10.0.17763.1234)/amd64");
        assert_eq!(w.os_version.as_deref(), Some("10.0.17763.1234"));
        assert_eq!(w.to_string(), "windows(10.0.17763.1234)/amd64");
        assert!(w.matches(&p("windows(10.0.17763.5000)/amd64")));
        assert!(!w.matches(&p("windows(10.0.20348.1)/amd64")));
    }

    #[test]
    fn unknown_never_matches() {
        assert!(!p("unknown/unknown").matches(&p("unknown/unknown")));
    }
}
