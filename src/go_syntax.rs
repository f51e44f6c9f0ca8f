//! Values spelt the way Go programs, and so Vault and OpenBao, spell them:
//! booleans as Go's `strconv.ParseBool` reads them, durations as Vault reads
//! a TTL. The one home of these rules: the configuration file and request
//! parameters (and any other reader of Go-spelt values) use these functions.
//!
//! Pure and without error types: each caller says `None` in its own words
//! and adds its own leniency (a request parameter's empty string is `false`;
//! callers trim where their input may be padded).

/// Go's `strconv.ParseBool`: `1`, `t`, `T`, `TRUE`, `true`, `True` are true;
/// `0`, `f`, `F`, `FALSE`, `false`, `False` are false; anything else
/// (including the empty string and padded text) is `None`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Seconds in a Go-style duration (`90`, `90s`, `1h30m`, `2d` is not Go but Vault accepts it).
///
/// The empty string is `0`; a bare whole number is seconds; otherwise a
/// sequence of numbers (decimals allowed) each with a unit `ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h` or `d`, summed and truncated to whole seconds. A sign
/// is `None`, and so is such a sum of 10^15 seconds or more.
pub fn parse_duration_secs(s: &str) -> Option<u64> {
    parse_duration(s).map(|d| d.as_secs())
}

/// [`parse_duration_secs`] without the truncation: `300.9s` is 300.9
/// seconds (to the nanosecond), for a bound compared as Go compares it.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s.is_empty() {
        return Some(std::time::Duration::ZERO);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(std::time::Duration::from_secs(n));
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        total += value * scale;
        rest = next;
    }
    (0.0..1e15)
        .contains(&total)
        .then(|| std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_are_go_parse_bool() {
        for on in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(on), Some(true), "{on}");
        }
        for off in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(off), Some(false), "{off}");
        }
        for bad in [
            "", "yes", "no", "on", "tRUE", "2", "-1", " true", "true\n", "y",
        ] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_as_vault_reads_them() {
        for (text, secs) in [
            ("", 0),
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("1h30m", 5400),
            ("24h", 86400),
            ("2d", 172_800),
            ("1d12h", 129_600),
            ("1.5h", 5400),
            ("1500ms", 1),
            ("999ms", 0),
            ("2000000us", 2),
            ("3000000µs", 3),
            ("5000000000ns", 5),
            ("1m1s", 61),
        ] {
            assert_eq!(parse_duration_secs(text), Some(secs), "{text}");
        }
        for bad in [
            "-1",
            "-1h",
            "+1h",
            "1x",
            "h",
            "1.5",
            "1e3s",
            "1h ",
            " 1h",
            "1H",
            "1..5s",
            "300000000000h",
        ] {
            assert_eq!(parse_duration_secs(bad), None, "{bad:?}");
        }
        // The limit is on sums of units; a bare number is taken as it is.
        assert_eq!(
            parse_duration_secs("277777777777h"),
            Some(999_999_999_997_200)
        );
        assert_eq!(
            parse_duration_secs("1000000000000000"),
            Some(1_000_000_000_000_000)
        );
    }
}
