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
    Ok(json!({
        "backfill_id": backfill_id.to_string(),
        "manifest_id": backfill.manifest_id,
        "manifest": backfill.manifest,
        "backfill": backfill,
        "approved_by": ledger.approval(backfill_id).await?,
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

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The event log as CSV (RFC 4180 quoting), preceded by a `manifest` row whose detail is
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
}
