//! Kubernetes resource quantities (`128Mi`, `1G`, `500m`, `1.5`, `2e3`), read as the API
//! server reads them, to the integers the kubelet uses.
//!
//! The grammar and rounding follow `k8s.io/apimachinery/pkg/api/resource/quantity.go`
//! (`ParseQuantity`, `Quantity.Value`, `Quantity.MilliValue`): a signed decimal number, then
//! one suffix: binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`: powers of 1024), decimal (`n`, `u`,
//! `m`, none, `k`, `M`, `G`, `T`, `P`, `E`: powers of 1000) or a decimal exponent (`e3`,
//! `E-2`). `Value()` and `MilliValue()` round up to the next integer, so `0.5` bytes is 1 byte
//! and `0.1m` CPU is 1 millicore. A scenario's own sizes stay binary-only ([`rsslab_wire::Bytes`]);
//! this is for what a Kubernetes manifest (or a CPU amount) says.

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// The largest integer a quantity may come to (`int64`'s maximum, as the kubelet's arithmetic).
const MAX_VALUE: u128 = i64::MAX as u128;

impl Quantity {
    /// Reads a quantity; the error says what is wrong, for a diagnostic to add the fix to.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let bad = || {
            format!(
                "`{text}` is not a Kubernetes quantity (a number and a suffix: 128Mi, 1G, 500m)"
            )
        };
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        let mut mantissa: u128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or_else(|| format!("`{text}` has too many digits"))?;
        }
        let mut exp10 = -(fraction.len() as i32);
        let mut exp2 = 0;
        match suffix {
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "" => {}
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            exponent if exponent.starts_with(['e', 'E']) => {
                let power: i32 = exponent[1..].parse().map_err(|_| bad())?;
                if !(-100..=100).contains(&power) {
                    return Err(format!("`{text}`: the exponent is out of range"));
                }
                exp10 += power;
            }
            _ => return Err(bad()),
        }
        Ok(Quantity {
            negative: negative && mantissa != 0,
            mantissa,
            exp10,
            exp2,
        })
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `Quantity.Value()`: the value rounded up to an integer (away from zero for a
    /// positive quantity); `None` past `int64` or for a negative quantity.
    pub fn value(&self) -> Option<u64> {
        self.scaled(0)
    }

    /// `Quantity.MilliValue()`: thousandths, rounded up; `None` as for [`Quantity::value`].
    pub fn milli_value(&self) -> Option<u64> {
        self.scaled(3)
    }

    /// ceil(self × 10^scale), for a quantity that is not negative.
    fn scaled(&self, scale: i32) -> Option<u64> {
        if self.negative {
            return None;
        }
        if self.mantissa == 0 {
            return Some(0);
        }
        let binary = self.mantissa.checked_shl(self.exp2)?;
        if binary >> self.exp2 != self.mantissa {
            return None;
        }
        let exp10 = self.exp10 + scale;
        let value = if exp10 >= 0 {
            binary.checked_mul(10u128.checked_pow(exp10 as u32)?)?
        } else {
            let divisor = 10u128.checked_pow(exp10.unsigned_abs());
            match divisor {
                Some(divisor) => binary.div_ceil(divisor),
                // More than 38 decimal places below one: a positive amount rounds up to 1.
                None => 1,
            }
        };
        (value <= MAX_VALUE).then_some(value as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<u64> {
        Quantity::parse(text).unwrap().value()
    }

    fn milli(text: &str) -> Option<u64> {
        Quantity::parse(text).unwrap().milli_value()
    }

    #[test]
    fn binary_and_decimal_suffixes_are_powers_of_1024_and_1000() {
        assert_eq!(value("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(value("1Gi"), Some(1 << 30));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("129M"), Some(129_000_000));
        assert_eq!(value("64k"), Some(64_000));
        assert_eq!(value("1Ki"), Some(1024));
        assert_eq!(value("268435456"), Some(268_435_456));
        assert_eq!(value("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(value("+5"), Some(5));
    }

    #[test]
    fn fractions_and_exponents_are_exact_and_round_up() {
        assert_eq!(value("0.5Gi"), Some(512 * 1024 * 1024));
        assert_eq!(value("1.5Gi"), Some(1_610_612_736));
        // 1.1Mi = 1153433.6 bytes: Value() rounds up.
        assert_eq!(value("1.1Mi"), Some(1_153_434));
        assert_eq!(value("2e3"), Some(2000));
        assert_eq!(value("12E-1"), Some(2), "1.2 rounds up to 2");
        assert_eq!(value(".5"), Some(1));
        assert_eq!(value("5."), Some(5));
        assert_eq!(value("0"), Some(0));
        assert_eq!(value("100m"), Some(1), "0.1 rounds up to 1");
    }

    #[test]
    fn cpu_reads_as_millicores() {
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli("1"), Some(1000));
        assert_eq!(milli("2.25"), Some(2250));
        assert_eq!(milli("0.1m"), Some(1), "MilliValue rounds up");
        assert_eq!(milli("100u"), Some(1));
    }

    #[test]
    fn what_is_no_quantity_or_too_large_is_refused() {
        for bad in [
            "", "Mi", "12 Mi", "12mi", "12MB", "1.2.3", "1e", "ten", "1Gi ", "--1", "1e1000",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Quantity::parse("-1Gi").unwrap().is_negative());
        assert_eq!(Quantity::parse("-1Gi").unwrap().value(), None);
        assert_eq!(value("16Ei"), None, "2^64 is past int64");
        assert_eq!(value("8Ei"), None, "2^63 is one past int64's maximum");
        assert_eq!(value("7Ei"), Some(7 << 60));
        assert!(!Quantity::parse("-0").unwrap().is_negative());
    }
}
