//! The two text formats. Prometheus asks for OpenMetrics and gets what
//! `prometheus-client` writes; anything else (curl, `promtool check metrics`, older
//! scrapers) gets the classic text format 0.0.4, converted here. The formats differ in
//! three ways that matter for these families: a counter's family name carries `_total`
//! in the classic format, `# UNIT` lines do not exist there, and neither does `# EOF`.

pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub(crate) const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Rewrites OpenMetrics text into the classic text format.
pub(crate) fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP comes before its TYPE: hold it until the type is known.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gain_total_and_openmetrics_only_lines_go() {
        let om = "# HELP backfill_x Things.\n# TYPE backfill_x counter\nbackfill_x_total{lane=\"a\"} 3\n\
                  # HELP backfill_d Wait.\n# TYPE backfill_d histogram\n# UNIT backfill_d seconds\n\
                  backfill_d_sum 1.0\nbackfill_d_count 2\n# EOF\n";
        let classic = to_classic(om);
        assert_eq!(
            classic,
            "# HELP backfill_x_total Things.\n# TYPE backfill_x_total counter\nbackfill_x_total{lane=\"a\"} 3\n\
             # HELP backfill_d Wait.\n# TYPE backfill_d histogram\nbackfill_d_sum 1.0\nbackfill_d_count 2\n"
        );
    }

    #[test]
    fn accept_header_decides_the_format() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
