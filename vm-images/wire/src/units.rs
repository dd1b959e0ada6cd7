//! Byte sizes and durations with human units.
//!
//! Sizes read a plain integer (bytes) or a string with a binary unit (`B`, `KiB`, `MiB`,
//! `GiB`, `TiB`, `PiB`, `EiB`) and serialize as integers. Decimal units (`kB`, `MB`, `GB`) are
//! refused: the kernel's `kB` is KiB, Docker's `512MB` is 512MiB and Kubernetes' `512M` is
//! 512000000 bytes, so `512MB` is ambiguous in exactly the places this lab is about; the error
//! says what to write instead. Durations always carry their unit (`ms`, `s`, `m`, `min`, `h`).
//! Errors say what was expected and end in `: write ...`, for the scenario parser to place at
//! the right line and column with that fix.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. Reads `4096`, `"512MiB"`, `"1.5GiB"` (binary units, powers of 1024).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A duration in milliseconds. Reads `"250ms"`, `"3s"`, `"1.5s"`, `"2m"`, `"1h"`; a bare integer
/// is rejected (is `3` three seconds or three milliseconds?) with a hint to write the unit.
/// Serializes as a string with a unit too, so it round-trips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

/// Why a size or duration string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub(crate) String);

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
];

const DURATION_UNITS: &[(&str, f64)] = &[
    ("ms", 1.0),
    ("s", 1_000.0),
    ("m", 60_000.0),
    ("min", 60_000.0),
    ("h", 3_600_000.0),
];

/// Splits "1.5GiB" into (1.5, "GiB").
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let number: f64 = number.replace('_', "").parse().ok()?;
    Some((number, unit.trim()))
}

impl FromStr for Bytes {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim_start().starts_with('-') {
            return Err(UnitError(format!(
                "`{text}` is negative: write a size of zero or more, e.g. \"512MiB\""
            )));
        }
        let Some((number, unit)) = split_number(text) else {
            return Err(not_a_size(text, None));
        };
        let unit = if unit.is_empty() { "B" } else { unit };
        let Some((_, factor)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(not_a_size(text, Some((number, unit))));
        };
        let bytes = number * *factor as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(UnitError(format!(
                "`{text}` is out of range for a size: write at most \"15EiB\""
            )));
        }
        Ok(Bytes(bytes.round() as u64))
    }
}

/// Why a size did not read, with the binary unit that was probably meant.
fn not_a_size(text: &str, read: Option<(f64, &str)>) -> UnitError {
    let generic = || {
        UnitError(format!(
            "`{text}` is not a size: write a number with a unit such as \"512MiB\", \"1GiB\" or \"4096B\""
        ))
    };
    let Some((number, unit)) = read else {
        return generic();
    };
    let lower = unit.to_ascii_lowercase();
    let prefix = lower.trim_end_matches('b').trim_end_matches('i');
    let Some(binary) = ["k", "m", "g", "t", "p", "e"]
        .iter()
        .position(|p| *p == prefix)
        .map(|i| SIZE_UNITS[i + 1].0)
    else {
        return generic();
    };
    let decimal = !lower.contains('i');
    if decimal {
        let power = 1000f64.powi(i32::try_from(prefix_rank(prefix)).unwrap_or(0));
        UnitError(format!(
            "`{text}` is ambiguous (the kernel and Docker count {unit} in powers of 1024, Kubernetes in powers of 1000): write \"{number}{binary}\", or {} for decimal bytes",
            (number * power).round()
        ))
    } else {
        UnitError(format!(
            "`{text}` has an unknown unit `{unit}`: write \"{number}{binary}\""
        ))
    }
}

/// 1 for k, 2 for m, ... 6 for e.
fn prefix_rank(prefix: &str) -> usize {
    ["k", "m", "g", "t", "p", "e"]
        .iter()
        .position(|p| *p == prefix)
        .map_or(0, |i| i + 1)
}

impl FromStr for Millis {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim_start().starts_with('-') {
            return Err(UnitError(format!(
                "`{text}` is negative: write a duration of zero or more, e.g. \"3s\""
            )));
        }
        let bad = |hint: Option<String>| {
            UnitError(format!(
                "`{text}` is not a duration: write {}",
                hint.unwrap_or_else(|| {
                    "a number with a unit such as \"250ms\", \"3s\" or \"2m\"".to_string()
                })
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(|| bad(None))?;
        let Some((_, factor)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(bad(duration_hint(number, unit)));
        };
        let millis = number * factor;
        if !millis.is_finite() || millis >= u64::MAX as f64 {
            return Err(UnitError(format!(
                "`{text}` is out of range for a duration: write at most a few hours, e.g. \"6h\""
            )));
        }
        Ok(Millis(millis.round() as u64))
    }
}

/// `"500ms"` for `500 msec`, `"30s"` for `30 seconds`...
fn duration_hint(number: f64, unit: &str) -> Option<String> {
    let lower = unit.to_ascii_lowercase();
    let written = match lower.as_str() {
        "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
        "sec" | "secs" | "second" | "seconds" => "s",
        "minute" | "minutes" | "mins" => "m",
        "hour" | "hours" | "hr" | "hrs" => "h",
        "d" | "day" | "days" => return Some(format!("\"{}h\"", number * 24.0)),
        "us" | "µs" | "ns" => {
            return Some("whole milliseconds or more, e.g. \"1ms\"".to_string());
        }
        "" => return Some(format!("\"{number}s\" or \"{number}ms\"")),
        _ if SIZE_UNITS
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(unit)) =>
        {
            return Some(format!(
                "a duration such as \"250ms\" or \"3s\" ({unit} is a unit of size)"
            ));
        }
        _ => return None,
    };
    Some(format!("\"{number}{written}\""))
}

impl Bytes {
    pub const fn mib(n: u64) -> Self {
        Bytes(n << 20)
    }
}

impl Millis {
    pub const fn secs(n: u64) -> Self {
        Millis(n * 1000)
    }

    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

/// Bytes in a mebibyte: charts, tables and measured values are in MiB.
pub const MIB: u64 = 1 << 20;

impl Bytes {
    /// The size in MiB, with its fraction.
    pub fn as_mib(self) -> f64 {
        self.0 as f64 / MIB as f64
    }
}

impl fmt::Display for Bytes {
    /// The largest binary unit that keeps the value readable: "512MiB", "1.5GiB", "4096B". For
    /// sizes as scenarios write them (it reads back as the same size); measured values are
    /// printed in MiB by the runner's `scenario::expect::format_value`, so they compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            ("EiB", 1u64 << 60),
            ("PiB", 1 << 50),
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (name, factor) in units {
            if self.0 >= factor {
                let value = self.0 as f64 / factor as f64;
                return if self.0.is_multiple_of(factor) {
                    write!(f, "{}{name}", self.0 / factor)
                } else {
                    write!(f, "{value:.1}{name}")
                };
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000 && self.0.is_multiple_of(1000) {
            write!(f, "{}s", self.0 / 1000)
        } else {
            write!(f, "{}ms", self.0)
        }
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"512MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
                u64::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MillisVisitor;
        impl Visitor<'_> for MillisVisitor {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"250ms\" or \"3s\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\""
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "a duration cannot be negative ({v}): write e.g. \"3s\""
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\""
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MillisVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_binary_and_decimal_units() {
        assert_eq!("512MiB".parse::<Bytes>().unwrap(), Bytes(512 << 20));
        assert_eq!("1.5GiB".parse::<Bytes>().unwrap(), Bytes(3 << 29));
        assert_eq!("4096".parse::<Bytes>().unwrap(), Bytes(4096));
        assert_eq!(" 2 KiB ".parse::<Bytes>().unwrap(), Bytes(2048));
    }

    #[test]
    fn sizes_reject_unknown_units_with_an_example() {
        let error = "512MB2".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("\"512MiB\""), "{error}");
        let error = "12 parsecs".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("not a size: write"), "{error}");
        assert!("".parse::<Bytes>().is_err());
        let error = "-5MiB".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("negative"), "{error}");
        let error = "1e3MiB".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("not a size"), "{error}");
    }

    #[test]
    fn decimal_and_misspelled_units_say_which_binary_unit_to_write() {
        let error = "512MB".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("ambiguous"), "{error}");
        assert!(error.contains("write \"512MiB\", or 512000000"), "{error}");
        let error = "1.5 GB".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("\"1.5GiB\", or 1500000000"), "{error}");
        let error = "64mib".parse::<Bytes>().unwrap_err().to_string();
        assert!(
            error.contains("unknown unit `mib`: write \"64MiB\""),
            "{error}"
        );
        let error = "2Gi".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("write \"2GiB\""), "{error}");
    }

    #[test]
    fn sizes_go_up_to_exbibytes() {
        assert_eq!("1EiB".parse::<Bytes>().unwrap(), Bytes(1 << 60));
        assert_eq!("2PiB".parse::<Bytes>().unwrap(), Bytes(2 << 50));
        let error = "16EiB".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("out of range"), "{error}");
        assert!("99999999999999999999999".parse::<Bytes>().is_err());
    }

    #[test]
    fn durations_read_units() {
        assert_eq!("250ms".parse::<Millis>().unwrap(), Millis(250));
        assert_eq!("1.5s".parse::<Millis>().unwrap(), Millis(1500));
        assert_eq!("2m".parse::<Millis>().unwrap(), Millis(120_000));
        assert_eq!("1h".parse::<Millis>().unwrap(), Millis(3_600_000));
        assert!("3".parse::<Millis>().is_err(), "a bare number has no unit");
        assert!("3 fortnights".parse::<Millis>().is_err());
        let error = "500 msec".parse::<Millis>().unwrap_err().to_string();
        assert!(error.ends_with("write \"500ms\""), "{error}");
        let error = "2 days".parse::<Millis>().unwrap_err().to_string();
        assert!(error.ends_with("write \"48h\""), "{error}");
        let error = "-3s".parse::<Millis>().unwrap_err().to_string();
        assert!(error.contains("negative"), "{error}");
        let error = "99999999999999999h"
            .parse::<Millis>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("out of range"), "{error}");
    }

    #[test]
    fn display_round_trips() {
        for text in ["512MiB", "1.5GiB", "4096B", "1KiB"] {
            let bytes: Bytes = text.parse().unwrap();
            assert_eq!(bytes.to_string().parse::<Bytes>().unwrap(), bytes);
        }
        assert_eq!(Millis(250).to_string(), "250ms");
        assert_eq!(Millis(3000).to_string(), "3s");
    }

    #[test]
    fn serde_reads_strings_and_integers_and_writes_integers() {
        #[derive(Debug, Deserialize, Serialize)]
        struct Doc {
            size: Bytes,
            every: Millis,
        }
        let doc: Doc = toml::from_str("size = \"1MiB\"\nevery = \"250ms\"").unwrap();
        assert_eq!((doc.size, doc.every), (Bytes(1 << 20), Millis(250)));
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"size":1048576,"every":"250ms"}"#
        );
        let error = toml::from_str::<Doc>("size = -1\nevery = \"1s\"").unwrap_err();
        assert!(error.to_string().contains("cannot be negative"), "{error}");
        let error = toml::from_str::<Doc>("size = 1\nevery = 3").unwrap_err();
        assert!(error.to_string().contains("write \"3s\""), "{error}");
    }
}
