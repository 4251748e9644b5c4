//! Resource quantities as Kubernetes writes them: CPU (`"1"`, `"0.5"`, `"500m"`) and
//! memory (`"512Mi"`, `"1G"`, `"1.5Gi"`, `"268435456"`).

/// A quantity that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub String);

pub const KI: u64 = 1 << 10;
pub const MI: u64 = 1 << 20;
pub const GI: u64 = 1 << 30;

/// Splits `"1.5Gi"` into `("1", "5", "Gi")`; digits only in the number.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || number.ends_with('.') {
        return None;
    }
    Some((whole, frac, suffix))
}

/// CPU in millicores: `"1"` is 1000, `"0.08"` and `"80m"` are 80. Finer than a
/// millicore is refused.
pub fn parse_cpu(s: &str) -> Result<u64, QuantityError> {
    let err = |why: &str| QuantityError(format!("\"{s}\" is not a CPU quantity: {why}"));
    let (whole, frac, suffix) =
        split_number(s).ok_or_else(|| err("expected a number like 1, 0.5 or 500m"))?;
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err("too large"))?
    };
    let frac_digits = frac.trim_end_matches('0');
    match suffix {
        "" => {
            if frac_digits.len() > 3 {
                return Err(err("the smallest unit is 0.001 (1m)"));
            }
            let frac_millis: u64 = if frac_digits.is_empty() {
                0
            } else {
                frac_digits
                    .parse::<u64>()
                    .map_err(|_| err("bad fraction"))?
                    * 10u64.pow(3 - frac_digits.len() as u32)
            };
            whole
                .checked_mul(1000)
                .and_then(|m| m.checked_add(frac_millis))
                .ok_or_else(|| err("too large"))
        }
        "m" => {
            if !frac_digits.is_empty() {
                return Err(err("the smallest unit is 1m"));
            }
            Ok(whole)
        }
        _ => Err(err("the only suffix allowed is m (millicores)")),
    }
}

/// Formats millicores as Cloud Run writes CPU: `"1"`, `"2"`, `"0.5"`, `"0.083"`.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        let s = format!("{}.{:03}", millis / 1000, millis % 1000);
        s.trim_end_matches('0').to_string()
    }
}

/// Memory in bytes: plain bytes, binary suffixes `Ki Mi Gi Ti Pi Ei`, decimal suffixes
/// `k` (or `K`), `M`, `G`, `T`, `P`, `E`; a fractional number is rounded up to a byte.
pub fn parse_memory(s: &str) -> Result<u64, QuantityError> {
    let err = |why: &str| QuantityError(format!("\"{s}\" is not a memory quantity: {why}"));
    let (whole, frac, suffix) = split_number(s)
        .ok_or_else(|| err("expected a number with an optional unit, like 512Mi or 1G"))?;
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => {
            return Err(err(
                "units are Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) or k, M, G, T, P, E",
            ))
        }
    };
    if whole.len() > 20 || frac.len() > 18 {
        return Err(err("too large or too precise"));
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err("too large"))?
    };
    let (frac_value, frac_scale): (u128, u128) = if frac.is_empty() {
        (0, 1)
    } else {
        (
            frac.parse().map_err(|_| err("bad fraction"))?,
            10u128.pow(frac.len() as u32),
        )
    };
    let bytes = whole * multiplier + (frac_value * multiplier).div_ceil(frac_scale);
    u64::try_from(bytes).map_err(|_| err("too large"))
}

/// Formats bytes with the largest binary unit that divides them: `"512Mi"`, `"2Gi"`.
pub fn format_memory(bytes: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        for (s, m) in [
            ("1", 1000),
            ("2", 2000),
            ("0.5", 500),
            (".5", 500),
            ("0.08", 80),
            ("0.083", 83),
            ("1.0", 1000),
            ("1000m", 1000),
            ("80m", 80),
            ("0.1000", 100),
        ] {
            assert_eq!(parse_cpu(s).unwrap(), m, "{s}");
        }
        for bad in [
            "", "one", "1.", "0.0805", "1.5m", "1k", "-1", " 1", "1 ", "1..0", ".",
        ] {
            assert!(parse_cpu(bad).is_err(), "{bad}");
        }
        assert_eq!(format_cpu(1000), "1");
        assert_eq!(format_cpu(500), "0.5");
        assert_eq!(format_cpu(83), "0.083");
    }

    #[test]
    fn memory() {
        for (s, b) in [
            ("512Mi", 512 * MI),
            ("1Gi", GI),
            ("1.5Gi", 3 * GI / 2),
            ("2G", 2_000_000_000),
            ("512M", 512_000_000),
            ("128k", 128_000),
            ("128K", 128_000),
            ("64Ki", 64 * KI),
            ("268435456", 256 * MI),
            ("0.5Ki", 512),
            ("0.0001Ki", 1),
        ] {
            assert_eq!(parse_memory(s).unwrap(), b, "{s}");
        }
        for bad in [
            "",
            "Mi",
            "512MB",
            "512mi",
            "1.5.0Gi",
            "-1Gi",
            "1e3",
            "512 Mi",
            "99999999999Ei",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(format_memory(512 * MI), "512Mi");
        assert_eq!(format_memory(4 * GI), "4Gi");
        assert_eq!(format_memory(1000), "1000");
    }
}
