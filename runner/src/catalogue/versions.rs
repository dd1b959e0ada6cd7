//! The order of versions: kernel catalogue ids (`5.10` < `6.1` < `6.12` < `7.2`), and Debian
//! package versions as dpkg orders them (for the catalogue's known behaviour changes).

use std::cmp::Ordering;

/// Orders kernel ids as versions (`5.10` < `6.1` < `6.12` < `7.2`), anything else by text.
pub fn compare_kernels(a: &str, b: &str) -> Ordering {
    fn key(id: &str) -> Vec<Result<u64, &str>> {
        id.split(['.', '-'])
            .map(|part| part.parse::<u64>().map_err(|_| part))
            .collect()
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// Debian version order (dpkg's `verrevcmp`): `[epoch:]upstream[-revision]`, digits compared
/// as numbers, `~` sorting before anything (even the end), letters before other characters.
pub fn compare_debian_versions(a: &str, b: &str) -> Ordering {
    fn split(version: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match version.split_once(':') {
            Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
            None => (0, version),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream, revision)
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn verrevcmp(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            while a.first().is_some_and(|c| !c.is_ascii_digit())
                || b.first().is_some_and(|c| !c.is_ascii_digit())
            {
                let (ca, cb) = (
                    a.first().copied().filter(|c| !c.is_ascii_digit()),
                    b.first().copied().filter(|c| !c.is_ascii_digit()),
                );
                match order(ca).cmp(&order(cb)) {
                    Ordering::Equal => {}
                    other => return other,
                }
                if ca.is_some() {
                    a = &a[1..];
                }
                if cb.is_some() {
                    b = &b[1..];
                }
            }
            let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (da, db) = (digits(a), digits(b));
            let number = |s: &[u8]| -> u128 {
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            match number(&a[..da]).cmp(&number(&b[..db])) {
                Ordering::Equal => {}
                other => return other,
            }
            a = &a[da..];
            b = &b[db..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_sort_as_versions() {
        let mut ids = vec!["7.2", "6.12", "5.10", "6.1", "zeta"];
        ids.sort_by(|a, b| compare_kernels(a, b));
        assert_eq!(ids, ["5.10", "6.1", "6.12", "7.2", "zeta"]);
    }

    #[test]
    fn debian_versions_order_like_dpkg() {
        use std::cmp::Ordering::*;
        for (a, b, order) in [
            ("6.1.176-1", "6.1.180-1", Less),
            ("6.1.99-1", "6.1.176-1", Less),
            ("6.12.107-1", "6.12.107-1", Equal),
            ("6.12.107-2", "6.12.107-1", Greater),
            ("7.2~rc3-1~exp1", "7.2-1", Less),
            ("7.2-1~bpo12+1", "7.2-1", Less),
            ("1:5.10-1", "6.1-1", Greater),
            ("6.1a-1", "6.1-1", Greater),
            ("6.12.57-1~bpo12+1", "6.12.57-1", Less),
            ("6.12.57-1~bpo12+1", "6.12.43-1", Greater),
            ("6.12.57-1+deb13u1", "6.12.57-1", Greater),
            ("6.12.57-1+deb13u1", "6.12.58-1", Less),
            ("7.2.12-1~bpo13+1", "7.2.9-1~bpo13+1", Greater),
            ("1:6.1-1", "1:6.1-1", Equal),
            ("0:6.1-1", "6.1-1", Equal),
        ] {
            assert_eq!(compare_debian_versions(a, b), order, "{a} vs {b}");
        }
    }
}
