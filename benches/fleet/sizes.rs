//! How big a benchmark run is, and the median of its repeats.

/// Run sizes: the full benchmark or the CI-sized one.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub quick: bool,
    pub repeats: usize,
}

impl Sizes {
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// The median of some measurements.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
