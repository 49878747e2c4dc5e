//! `backfill plan`: makespan and cost, with warnings; touches nothing.

use backfill_contract::PartitionDate;

use crate::args::PlanArgs;
use crate::exit::CliError;

pub fn run(args: PlanArgs) -> Result<(), CliError> {
    let partitions = match (args.partitions, args.start, args.end) {
        (Some(n), _, _) => n,
        (None, Some(start), Some(end)) => PartitionDate::range_inclusive(start, end).len() as u64,
        _ => return Err(CliError::usage("give --partitions, or --start and --end")),
    };
    let input = backfill_producer::PlanInput {
        partitions,
        concurrency: args.concurrency,
        run_hours: args.run_minutes / 60.0,
        price_per_run_hour: args.price_per_run_hour,
        budget: args.budget,
        window_hours: args.window_hours,
    };
    let plan = backfill_producer::plan(&input).map_err(|problem| {
        use backfill_producer::PlanProblem;
        CliError::usage(match problem {
            PlanProblem::Partitions => "--partitions must be at least 1",
            PlanProblem::Concurrency => "--concurrency must be at least 1",
            PlanProblem::RunLength => "--run-minutes must be above 0",
            PlanProblem::Amounts => "prices, budgets and windows must be positive",
        })
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{partitions} partitions at {} at a time, {:.0} min each: {} waves, makespan {:.1} h, cost {:.2}",
        args.concurrency, args.run_minutes, plan.waves, plan.makespan_hours, plan.cost
    );
    if let Some(c) = plan.min_concurrency_for_window {
        println!(
            "the smallest concurrency that fits the {:.0} h window: {c}",
            args.window_hours
        );
    }
    for w in &plan.warnings {
        println!("WARNING: {w}");
    }
    Ok(())
}
