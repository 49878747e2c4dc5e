//! Values parsed where they enter: clap refuses a bad one (exit 2, naming the flag and
//! the problem), so commands never parse strings again. Ids, dates, order and the API
//! budget use their own types' parsers; these are the ones without a type of their own.

use std::str::FromStr;
use std::time::Duration;

use backfill_broker::parse_duration;

/// A price or a budget: a finite number, not negative. NaN or infinity would silently
/// disable the budget guard (every comparison with NaN is false), so clap refuses them
/// (exit 2, naming the flag).
pub fn amount(value: &str) -> Result<f64, String> {
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{value} is not a finite number"));
    }
    if v < 0.0 {
        return Err(format!("{value} is negative"));
    }
    Ok(v)
}

/// The broker topology's delay tiers, comma-separated (for example 1s,5s,30s,2m,10m,1h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayTiers(pub Vec<Duration>);

impl FromStr for DelayTiers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(parse_duration)
            .collect::<Result<Vec<Duration>, _>>()
            .map(DelayTiers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_finite_and_not_negative() {
        assert_eq!(amount(" 2.5 "), Ok(2.5));
        assert_eq!(amount("0"), Ok(0.0));
        for bad in ["NaN", "inf", "-1", "1e400", "x"] {
            assert!(amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delay_tiers_parse_each_duration() {
        let tiers: DelayTiers = "1s,2m".parse().unwrap_or(DelayTiers(Vec::new()));
        assert_eq!(tiers.0, [Duration::from_secs(1), Duration::from_secs(120)]);
        assert!("5x".parse::<DelayTiers>().is_err());
    }
}
