//! The audit export: the manifest and everything that happened to a backfill, in order.

use backfill_contract::BackfillId;
use backfill_ledger::Ledger;
use serde_json::{Value, json};

use crate::ReconcileError;

/// Manifest, backfill, every event, every data-quality verdict, every promotion and
/// rollback, as one JSON document.
pub async fn audit_json(
    ledger: &Ledger,
    backfill_id: &BackfillId,
) -> Result<Value, ReconcileError> {
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let contract_history = ledger.contract_history(backfill_id).await?;
    let approved_by = match contract_history.last() {
        Some(c) => ledger.approval(backfill_id, c.version).await?,
        None => None,
    };
    Ok(json!({
        "backfill_id": backfill_id.to_string(),
        "manifest_id": backfill.manifest_id,
        "manifest": backfill.manifest,
        "backfill": backfill,
        "contract_history": contract_history,
        "approved_by": approved_by,
        "events": ledger.events(backfill_id).await?,
        "dq_results": ledger.dq_results(backfill_id).await?,
        "actions": ledger.actions(backfill_id).await?,
    }))
}

const COLUMNS: [&str; 11] = [
    "event_id",
    "at_ms",
    "actor",
    "backfill_id",
    "partition_date",
    "attempt",
    "run_id",
    "kind",
    "from_state",
    "to_state",
    "detail",
];

/// One CSV cell: neutralised against spreadsheet formula injection (a cell starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet
/// shows it as text instead of evaluating it), then quoted when needed (RFC 4180).
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The event log as CSV (RFC 4180 quoting, cells neutralised against formula injection),
/// preceded by a `manifest` row whose detail is
/// the manifest as JSON.
pub async fn audit_csv(
    ledger: &Ledger,
    backfill_id: &BackfillId,
) -> Result<String, ReconcileError> {
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let manifest_row = [
        "0".to_owned(),
        backfill.created_at_ms.to_string(),
        backfill.created_by.clone(),
        backfill_id.to_string(),
        String::new(),
        String::new(),
        String::new(),
        "manifest".to_owned(),
        String::new(),
        String::new(),
        backfill.manifest.to_string(),
    ];
    out.push_str(
        &manifest_row
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
    for e in ledger.events(backfill_id).await? {
        let row = [
            e.event_id.to_string(),
            e.at_ms.to_string(),
            e.actor,
            e.backfill_id,
            e.partition_date.unwrap_or_default(),
            e.attempt.map(|a| a.to_string()).unwrap_or_default(),
            e.run_id.map(|r| r.to_string()).unwrap_or_default(),
            e.kind,
            e.from_state.unwrap_or_default(),
            e.to_state.unwrap_or_default(),
            e.detail,
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn cells_that_a_spreadsheet_would_evaluate_are_neutralised() {
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        // Neutralised and quoted.
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only a leading character counts.
        assert_eq!(csv_field("a=b"), "a=b");
        assert_eq!(csv_field("2026-01-01"), "2026-01-01");
        assert_eq!(csv_field(""), "");
    }
}
