//! The status grid: one cell per day of the whole range, a row per month, coloured by
//! state on a terminal (plain letters otherwise).

use std::collections::BTreeMap;

use backfill_ledger::{Partition, PartitionState};
use chrono::Datelike;

/// The letter of a state (also its legend).
pub fn cell(state: PartitionState) -> char {
    match state {
        PartitionState::Pending => '.',
        PartitionState::Triggering => 't',
        PartitionState::Running => 'R',
        PartitionState::Succeeded => '#',
        PartitionState::Failed => 'f',
        PartitionState::DeadLettered => 'X',
        PartitionState::Cancelled => 'c',
    }
}

fn colour(state: PartitionState) -> &'static str {
    match state {
        PartitionState::Pending => "\x1b[90m",
        PartitionState::Triggering | PartitionState::Running => "\x1b[36m",
        PartitionState::Succeeded => "\x1b[32m",
        PartitionState::Failed => "\x1b[33m",
        PartitionState::DeadLettered => "\x1b[31m",
        PartitionState::Cancelled => "\x1b[35m",
    }
}

/// One month's cells, by day of month.
type Month = Vec<Option<(char, PartitionState)>>;

/// Renders the grid; `verified` succeeded partitions show `V` (proven by the reconciler).
pub fn render(partitions: &[Partition], colour_on: bool) -> String {
    let mut months: BTreeMap<(i32, u32), Month> = BTreeMap::new();
    for p in partitions {
        let d = p.date.date();
        let row = months
            .entry((d.year(), d.month()))
            .or_insert_with(|| vec![None; 31]);
        let c = if p.state == PartitionState::Succeeded && p.verified_at_ms.is_some() {
            'V'
        } else {
            cell(p.state)
        };
        row[d.day0() as usize] = Some((c, p.state));
    }
    let mut out = String::from("         ");
    for day in 1..=31 {
        // Tens on 10, 20, 30; the next line has the units.
        out.push(if day % 10 == 0 {
            char::from_digit(day / 10, 10).unwrap_or(' ')
        } else {
            ' '
        });
    }
    out.push('\n');
    out.push_str("         ");
    for day in 1..=31u32 {
        out.push(char::from_digit(day % 10, 10).unwrap_or(' '));
    }
    out.push('\n');
    for ((year, month), row) in months {
        out.push_str(&format!("{year}-{month:02}  "));
        for slot in row {
            match slot {
                Some((c, state)) if colour_on => {
                    out.push_str(&format!("{}{c}\x1b[0m", colour(state)))
                }
                Some((c, _)) => out.push(c),
                None => out.push(' '),
            }
        }
        out.push('\n');
    }
    out.push_str("legend: . pending  t triggering  R running  # succeeded  V verified  f retrying  X dead-lettered  c cancelled\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use backfill_contract::{Attempt, CheckSeq};

    fn p(date: &str, state: PartitionState, verified: bool) -> Partition {
        Partition {
            backfill_id: "bf".parse().unwrap(),
            date: date.parse().unwrap(),
            state,
            attempt: Attempt::FIRST,
            idempotency_token: None,
            run_id: None,
            run_url: None,
            check_seq: CheckSeq::from(0),
            check_due_ms: None,
            enqueued: true,
            owner: None,
            last_error: None,
            triggered_at_ms: None,
            run_started_ms: None,
            run_ended_ms: None,
            verified_at_ms: verified.then_some(1),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn one_cell_per_day_and_a_row_per_month() {
        let grid = render(
            &[
                p("2026-01-30", PartitionState::Succeeded, true),
                p("2026-01-31", PartitionState::DeadLettered, false),
                p("2026-02-01", PartitionState::Running, false),
                p("2026-02-02", PartitionState::Pending, false),
            ],
            false,
        );
        let lines: Vec<&str> = grid.lines().collect();
        assert_eq!(lines[2], format!("2026-01  {}VX", " ".repeat(29)));
        assert_eq!(lines[3].trim_end(), "2026-02  R.");
        assert!(
            render(&[p("2026-01-01", PartitionState::Succeeded, false)], true)
                .contains("\x1b[32m#")
        );
    }
}
