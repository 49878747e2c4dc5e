//! Reading Prometheus text: samples by their full series name, summed by name and labels.

use std::collections::BTreeMap;

/// One scrape: every sample by its full series name.
#[derive(Debug, Default)]
pub struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// `GET http://ADDR/metrics`, parsed; the text too, for failure messages.
    pub async fn take(addr: &str) -> (Self, String) {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("read /metrics");
        (Self::parse(&text), text)
    }

    /// Parses the classic or the OpenMetrics text format (comments skipped).
    pub fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            samples.insert(series.to_owned(), value.parse::<f64>().expect("a value"));
        }
        Self(samples)
    }

    /// The sum over the series of `name` whose labels include every pair of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|s| s.split_once('{').map_or(s.as_str(), |(n, _)| n) == name)
    }
}
