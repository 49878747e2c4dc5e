//! `backfill plan`: what a backfill will take, before any money is spent. Pure arithmetic:
//! runs go in waves of the concurrency cap, each wave as long as one run.

use serde::Serialize;

/// What the operator expects.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    pub partitions: u64,
    pub concurrency: u64,
    /// Expected duration of one run, in hours.
    pub run_hours: f64,
    /// Cluster price per run-hour.
    pub price_per_run_hour: f64,
    pub budget: Option<f64>,
    /// The time the whole backfill must fit in (72 hours).
    pub window_hours: f64,
}

/// The estimate, with warnings for every limit it breaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub waves: u64,
    pub makespan_hours: f64,
    pub cost: f64,
    pub fits_window: bool,
    pub fits_budget: Option<bool>,
    /// The smallest concurrency that finishes within the window (None: a single run is
    /// already longer than the window).
    pub min_concurrency_for_window: Option<u64>,
    pub warnings: Vec<String>,
}

/// The input of a plan that makes no sense, by the value at fault (the command line names
/// its flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanProblem {
    #[error("the number of partitions must be at least 1")]
    Partitions,
    #[error("the concurrency must be at least 1")]
    Concurrency,
    #[error("the run length must be above 0")]
    RunLength,
    #[error("prices, budgets and windows must be positive")]
    Amounts,
}

/// Plans a backfill, or names the input that makes no sense.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanProblem> {
    if input.partitions == 0 {
        return Err(PlanProblem::Partitions);
    }
    if input.concurrency == 0 {
        return Err(PlanProblem::Concurrency);
    }
    if !input.run_hours.is_finite() || input.run_hours <= 0.0 {
        return Err(PlanProblem::RunLength);
    }
    if input.price_per_run_hour < 0.0
        || input.budget.is_some_and(|b| b < 0.0)
        || !input.window_hours.is_finite()
        || input.window_hours <= 0.0
    {
        return Err(PlanProblem::Amounts);
    }
    let waves = input.partitions.div_ceil(input.concurrency);
    let makespan_hours = waves as f64 * input.run_hours;
    let cost = input.partitions as f64 * input.run_hours * input.price_per_run_hour;
    let waves_in_window = (input.window_hours / input.run_hours).floor() as u64;
    let min_concurrency_for_window =
        (waves_in_window > 0).then(|| input.partitions.div_ceil(waves_in_window));
    let fits_window = makespan_hours <= input.window_hours;
    let fits_budget = input.budget.map(|b| cost <= b);
    let mut warnings = Vec::new();
    if !fits_window {
        warnings.push(match min_concurrency_for_window {
            Some(c) => format!(
                "makespan {makespan_hours:.1} h exceeds the {:.0} h window; a concurrency of {c} fits it",
                input.window_hours
            ),
            None => format!("one run ({:.1} h) is longer than the {:.0} h window", input.run_hours, input.window_hours),
        });
    }
    if let (Some(false), Some(budget)) = (fits_budget, input.budget) {
        warnings.push(format!(
            "cost {cost:.0} exceeds the budget of {budget:.0} by {:.0}; concurrency does not change cost, \
             shorter runs or cheaper clusters do",
            cost - budget
        ));
    }
    Ok(Plan {
        waves,
        makespan_hours,
        cost,
        fits_window,
        fits_budget,
        min_concurrency_for_window,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        partitions: u64,
        concurrency: u64,
        run_hours: f64,
        price: f64,
        budget: Option<f64>,
    ) -> PlanInput {
        PlanInput {
            partitions,
            concurrency,
            run_hours,
            price_per_run_hour: price,
            budget,
            window_hours: 72.0,
        }
    }

    #[test]
    fn hand_computed_cases() {
        // 180 days, 20 at a time, 2 h each, 10 per run-hour: 9 waves, 18 h, 3600.
        let p = plan(&input(180, 20, 2.0, 10.0, Some(18_000.0))).unwrap();
        assert_eq!((p.waves, p.makespan_hours, p.cost), (9, 18.0, 3_600.0));
        assert!(p.fits_window && p.fits_budget == Some(true) && p.warnings.is_empty());
        assert_eq!(
            p.min_concurrency_for_window,
            Some(5),
            "36 waves fit in 72 h: ceil(180 / 36)"
        );

        // 2 at a time: 90 waves, 180 h: too long; 5 fits.
        let p = plan(&input(180, 2, 2.0, 10.0, None)).unwrap();
        assert_eq!((p.waves, p.makespan_hours), (90, 180.0));
        assert!(!p.fits_window);
        assert!(
            p.warnings[0].contains("a concurrency of 5 fits it"),
            "{:?}",
            p.warnings
        );

        // 60 per run-hour: 21600 against 18000.
        let p = plan(&input(180, 20, 2.0, 60.0, Some(18_000.0))).unwrap();
        assert_eq!(p.cost, 21_600.0);
        assert_eq!(p.fits_budget, Some(false));
        assert!(p.warnings[0].contains("by 3600"), "{:?}", p.warnings);

        // Uneven waves: 7 partitions, 3 at a time, 30 minutes: 3 waves, 1.5 h.
        let p = plan(&input(7, 3, 0.5, 1.0, None)).unwrap();
        assert_eq!((p.waves, p.makespan_hours, p.cost), (3, 1.5, 3.5));

        // A single run longer than the window.
        let p = plan(&input(10, 10, 80.0, 1.0, None)).unwrap();
        assert_eq!(p.min_concurrency_for_window, None);
        assert!(p.warnings[0].contains("longer than the 72 h window"));
    }

    #[test]
    fn nonsense_inputs_are_named() {
        assert!(plan(&input(0, 1, 1.0, 1.0, None)).unwrap_err() == PlanProblem::Partitions);
        assert!(plan(&input(1, 0, 1.0, 1.0, None)).unwrap_err() == PlanProblem::Concurrency);
        assert!(plan(&input(1, 1, 0.0, 1.0, None)).unwrap_err() == PlanProblem::RunLength);
    }
}
