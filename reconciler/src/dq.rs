//! The data-quality policy: named rules over a partition's metrics (what the job's task
//! passed to `dbutils.notebook.exit()`), read from a TOML file, evaluated by one pure
//! function.
//!
//! ```toml
//! [[rule]]
//! name = "no duplicate keys"
//! check = "threshold"
//! metric = "duplicate_keys"
//! op = "le"              # lt, le, eq, ne, ge, gt
//! value = 0
//!
//! [[rule]]
//! name = "row count within 5% of production"
//! check = "ratio"
//! metric = "row_count"
//! of = "production_row_count"
//! tolerance = 0.05       # |row_count / production_row_count - 1| <= 0.05
//!
//! [[rule]]
//! name = "expected schema"
//! check = "equals"
//! metric = "schema_hash"
//! value = "usage_344b193379a8"
//!
//! [[rule]]
//! name = "metrics reported"
//! check = "present"
//! metrics = ["row_count", "duplicate_keys"]
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};

/// A comparison of a metric against a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Ge => a >= b,
            Op::Gt => a > b,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    Threshold {
        metric: String,
        op: Op,
        value: f64,
    },
    Equals {
        metric: String,
        value: toml::Value,
    },
    Ratio {
        metric: String,
        of: String,
        tolerance: f64,
    },
    Present {
        metrics: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    pub name: String,
    #[serde(flatten)]
    pub check: Check,
}

/// Every rule a partition must pass before promotion.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqPolicy {
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

/// One rule's verdict, with what was measured and what was required.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rule: String,
    pub passed: bool,
    pub value: String,
    pub threshold: String,
}

impl DqPolicy {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let policy: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(r) = policy.rules.iter().find(|r| r.name.trim().is_empty()) {
            return Err(format!("a rule has an empty name: {r:?}"));
        }
        Ok(policy)
    }

    /// Evaluates every rule on `metrics`.
    pub fn evaluate(&self, metrics: &Map<String, Value>) -> Vec<Verdict> {
        self.rules.iter().map(|r| evaluate(r, metrics)).collect()
    }
}

fn number(metrics: &Map<String, Value>, name: &str) -> Option<f64> {
    metrics.get(name).and_then(Value::as_f64)
}

fn shown(metrics: &Map<String, Value>, name: &str) -> String {
    metrics
        .get(name)
        .map_or_else(|| "missing".to_owned(), Value::to_string)
}

fn evaluate(rule: &Rule, metrics: &Map<String, Value>) -> Verdict {
    let (passed, value, threshold) = match &rule.check {
        Check::Threshold { metric, op, value } => (
            number(metrics, metric).is_some_and(|v| op.holds(v, *value)),
            format!("{metric}={}", shown(metrics, metric)),
            format!("{metric} {} {value}", op.symbol()),
        ),
        Check::Equals { metric, value } => {
            let want = serde_json::to_value(value).unwrap_or(Value::Null);
            let got = metrics.get(metric);
            let equal = match (got, &want) {
                (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            (
                equal,
                format!("{metric}={}", shown(metrics, metric)),
                format!("{metric} == {want}"),
            )
        }
        Check::Ratio {
            metric,
            of,
            tolerance,
        } => {
            let ratio = match (number(metrics, metric), number(metrics, of)) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                _ => None,
            };
            (
                ratio.is_some_and(|r| (r - 1.0).abs() <= *tolerance),
                match ratio {
                    Some(r) => format!("{metric}/{of}={r:.4}"),
                    None => format!(
                        "{metric}={}, {of}={}",
                        shown(metrics, metric),
                        shown(metrics, of)
                    ),
                },
                format!("|{metric}/{of} - 1| <= {tolerance}"),
            )
        }
        Check::Present { metrics: names } => {
            let missing: Vec<&str> = names
                .iter()
                .filter(|n| !metrics.contains_key(*n))
                .map(String::as_str)
                .collect();
            (
                missing.is_empty(),
                if missing.is_empty() {
                    "all present".into()
                } else {
                    format!("missing {}", missing.join(", "))
                },
                format!("present: {}", names.join(", ")),
            )
        }
    };
    Verdict {
        rule: rule.name.clone(),
        passed,
        value,
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
        [[rule]]
        name = "no duplicate keys"
        check = "threshold"
        metric = "duplicate_keys"
        op = "le"
        value = 0
        [[rule]]
        name = "row count within 5% of production"
        check = "ratio"
        metric = "row_count"
        of = "production_row_count"
        tolerance = 0.05
        [[rule]]
        name = "expected schema"
        check = "equals"
        metric = "schema_hash"
        value = "v7"
        [[rule]]
        name = "metrics reported"
        check = "present"
        metrics = ["row_count", "duplicate_keys"]
    "#;

    fn metrics(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn rules_pass_and_fail_naming_value_and_threshold() {
        let policy = DqPolicy::from_toml(POLICY).unwrap();
        let good = metrics(
            serde_json::json!({"duplicate_keys": 0, "row_count": 1000, "production_row_count": 980, "schema_hash": "v7"}),
        );
        assert!(
            policy.evaluate(&good).iter().all(|v| v.passed),
            "{:?}",
            policy.evaluate(&good)
        );
        let cases = [
            (
                serde_json::json!({"duplicate_keys": 3, "row_count": 1000, "production_row_count": 1000, "schema_hash": "v7"}),
                "no duplicate keys",
                "duplicate_keys=3",
                "duplicate_keys <= 0",
            ),
            (
                serde_json::json!({"duplicate_keys": 0, "row_count": 1100, "production_row_count": 1000, "schema_hash": "v7"}),
                "row count within 5% of production",
                "row_count/production_row_count=1.1000",
                "|row_count/production_row_count - 1| <= 0.05",
            ),
            (
                serde_json::json!({"duplicate_keys": 0, "row_count": 1000, "production_row_count": 1000, "schema_hash": "v6"}),
                "expected schema",
                "schema_hash=\"v6\"",
                "schema_hash == \"v7\"",
            ),
            (
                serde_json::json!({"row_count": 1000, "production_row_count": 1000, "schema_hash": "v7"}),
                "metrics reported",
                "missing duplicate_keys",
                "present: row_count, duplicate_keys",
            ),
        ];
        for (m, rule, value, threshold) in cases {
            let failed: Vec<Verdict> = policy
                .evaluate(&metrics(m))
                .into_iter()
                .filter(|v| !v.passed)
                .collect();
            let f = failed
                .iter()
                .find(|v| v.rule == rule)
                .unwrap_or_else(|| panic!("{rule} did not fail: {failed:?}"));
            assert_eq!((f.value.as_str(), f.threshold.as_str()), (value, threshold));
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_problem() {
        assert!(
            DqPolicy::from_toml("[[rule]]\nname = \"x\"\ncheck = \"vibes\"\n")
                .unwrap_err()
                .contains("vibes")
        );
        assert!(
            DqPolicy::from_toml("[[rule]]\nname = \"\"\ncheck = \"present\"\nmetrics = []\n")
                .is_err()
        );
        assert!(DqPolicy::from_toml("[[rules]]\n").is_err());
    }
}
