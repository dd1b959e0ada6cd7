//! A size that is either absolute or a share of a memory figure of the guest, resolved inside
//! the guest from `/proc/meminfo`: `"600MiB"`, `4096`, `"60% of mem_total"`,
//! `"200% of commit_limit"`, `"50% of mem_available"`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Bytes, UnitError};

/// The guest memory figure a relative [`Amount`] is a share of (a `/proc/meminfo` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `MemTotal`.
    MemTotal,
    /// `MemAvailable`, when the amount is resolved.
    MemAvailable,
    /// `CommitLimit` (swap + RAM × overcommit_ratio; the limit under `vm.overcommit_memory = 2`).
    CommitLimit,
}

impl Base {
    /// The name in scenarios: `mem_total`.
    pub fn name(self) -> &'static str {
        match self {
            Base::MemTotal => "mem_total",
            Base::MemAvailable => "mem_available",
            Base::CommitLimit => "commit_limit",
        }
    }

    /// The `/proc/meminfo` field: `MemTotal`.
    pub fn meminfo_field(self) -> &'static str {
        match self {
            Base::MemTotal => "MemTotal",
            Base::MemAvailable => "MemAvailable",
            Base::CommitLimit => "CommitLimit",
        }
    }

    const ALL: [Base; 3] = [Base::MemTotal, Base::MemAvailable, Base::CommitLimit];
}

/// An absolute size or a percentage of a guest memory figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Bytes(Bytes),
    /// `percent`% of `of` (may exceed 100).
    Share {
        percent: f64,
        of: Base,
    },
}

impl Default for Amount {
    fn default() -> Self {
        Amount::Bytes(Bytes(0))
    }
}

impl Amount {
    /// Bytes, given the value of a base in bytes (None when it cannot be read).
    pub fn resolve(self, base: impl Fn(Base) -> Option<u64>) -> Result<u64, String> {
        match self {
            Amount::Bytes(bytes) => Ok(bytes.0),
            Amount::Share { percent, of } => {
                let total = base(of)
                    .ok_or_else(|| format!("{} is not in /proc/meminfo", of.meminfo_field()))?;
                Ok((total as f64 * percent / 100.0).round() as u64)
            }
        }
    }

    /// Whether it is surely zero.
    pub fn is_zero(self) -> bool {
        match self {
            Amount::Bytes(bytes) => bytes.0 == 0,
            Amount::Share { percent, .. } => percent == 0.0,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Bytes(bytes) => write!(f, "{bytes}"),
            Amount::Share { percent, of } => write!(f, "{percent}% of {}", of.name()),
        }
    }
}

impl FromStr for Amount {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((percent, of)) = text.split_once('%') else {
            return text.parse().map(Amount::Bytes);
        };
        let bad = || {
            UnitError(format!(
                "`{text}` is not a size: write e.g. \"600MiB\", \"60% of mem_total\", \"50% of mem_available\" or \"200% of commit_limit\""
            ))
        };
        let percent: f64 = percent.trim().parse().map_err(|_| bad())?;
        if !percent.is_finite() || percent < 0.0 {
            return Err(bad());
        }
        let of = of.trim().strip_prefix("of").ok_or_else(bad)?.trim();
        let of = Base::ALL
            .into_iter()
            .find(|base| base.name() == of)
            .ok_or_else(bad)?;
        Ok(Amount::Share { percent, of })
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Bytes(bytes) => bytes.serialize(serializer),
            Amount::Share { .. } => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"512MiB\" or \"60% of mem_total\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount::Bytes(Bytes(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                u64::try_from(v)
                    .map(|v| Amount::Bytes(Bytes(v)))
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_absolute_and_relative_sizes() {
        assert_eq!(
            "600MiB".parse::<Amount>().unwrap(),
            Amount::Bytes(Bytes::mib(600))
        );
        assert_eq!(
            "60% of mem_total".parse::<Amount>().unwrap(),
            Amount::Share {
                percent: 60.0,
                of: Base::MemTotal
            }
        );
        assert_eq!(
            " 250 %  of commit_limit".parse::<Amount>().unwrap(),
            Amount::Share {
                percent: 250.0,
                of: Base::CommitLimit
            }
        );
        for bad in [
            "60%",
            "60% mem_total",
            "60% of ram",
            "x% of mem_total",
            "-5% of mem_total",
        ] {
            let error = bad.parse::<Amount>().unwrap_err().to_string();
            assert!(error.contains("60% of mem_total"), "{bad}: {error}");
        }
    }

    #[test]
    fn resolves_against_meminfo_and_round_trips() {
        let base = |of: Base| (of == Base::MemTotal).then_some(1000);
        let share: Amount = "50% of mem_total".parse().unwrap();
        assert_eq!(share.resolve(base), Ok(500));
        let missing: Amount = "50% of commit_limit".parse().unwrap();
        assert!(missing.resolve(base).unwrap_err().contains("CommitLimit"));
        for amount in [share, Amount::Bytes(Bytes(4096))] {
            let json = serde_json::to_string(&amount).unwrap();
            assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), amount);
        }
        assert_eq!(
            serde_json::to_string(&share).unwrap(),
            "\"50% of mem_total\""
        );
    }
}
