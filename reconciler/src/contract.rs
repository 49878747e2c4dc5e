//! Building, checking and amending a backfill's promotion contract (SPEC invariant 10).
//!
//! The contract is recorded when the backfill is produced. Later commands may repeat a
//! value (a flag or environment variable that agrees is fine); a value that disagrees is
//! refused, never silently used: only a recorded amendment changes the contract.

use backfill_contract::BackfillId;
use backfill_databricks::{ApiError, DatabricksClient};
use backfill_ledger::{Ledger, PromotionContract, RecordedJob, RecordedPolicy};
use sha2::Digest;

use crate::{DqPolicy, ReconcileError};

/// A policy file's text, checked (it must parse) and fingerprinted for the record.
pub fn recorded_policy(text: &str, source: &str) -> Result<RecordedPolicy, String> {
    if DqPolicy::from_toml(text)?.rules.is_empty() {
        return Err("the policy has no rules, so it would gate nothing".into());
    }
    Ok(RecordedPolicy {
        sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        text: text.to_owned(),
        source: source.to_owned(),
    })
}

/// The contract's policy, parsed (`None`: the contract records none).
pub fn policy_of(contract: &PromotionContract) -> Result<Option<DqPolicy>, ReconcileError> {
    contract
        .dq_policy
        .as_ref()
        .map(|p| {
            DqPolicy::from_toml(&p.text).map_err(|e| {
                ReconcileError::Contract(format!(
                    "the recorded data-quality policy ({}) no longer parses: {e}",
                    p.source
                ))
            })
        })
        .transpose()
}

/// A job as it is now, for the record.
pub async fn recorded_job(client: &DatabricksClient, job_id: i64) -> Result<RecordedJob, ApiError> {
    let job = client.get_job(job_id).await?;
    Ok(RecordedJob {
        job_id,
        name: job.settings.name.clone(),
        settings_hash: job.settings_hash(),
    })
}

/// Refuses to run a job whose definition changed since the contract recorded it.
pub async fn check_job_unchanged(
    client: &DatabricksClient,
    recorded: &RecordedJob,
    role: &str,
) -> Result<(), ReconcileError> {
    let now = recorded_job(client, recorded.job_id).await?;
    if now.settings_hash != recorded.settings_hash {
        return Err(ReconcileError::JobChanged {
            role: role.to_owned(),
            job_id: recorded.job_id,
            now: now.settings_hash,
            recorded: recorded.settings_hash.clone(),
        });
    }
    Ok(())
}

/// A value of the promotion contract an operator can give again (at produce, reconcile,
/// promote or amend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractField {
    DqPolicy,
    /// Asking for no data-quality policy at all.
    NoDqPolicy,
    RequireApproval,
    StagingTable,
    TargetTable,
    PromotionJobId,
    RollbackJobId,
}

impl ContractField {
    /// The value in words (the command line names its flag instead).
    pub fn as_str(self) -> &'static str {
        match self {
            ContractField::DqPolicy => "dq policy",
            ContractField::NoDqPolicy => "no dq policy",
            ContractField::RequireApproval => "approval required",
            ContractField::StagingTable => "staging table",
            ContractField::TargetTable => "target table",
            ContractField::PromotionJobId => "promotion job id",
            ContractField::RollbackJobId => "rollback job id",
        }
    }
}

/// A value given that disagrees with the recorded contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub field: ContractField,
    /// What was given (none for asking for no policy).
    pub given: Option<String>,
    pub recorded: String,
}

impl Disagreement {
    /// The disagreement, the value called `name`.
    pub fn describe(&self, name: &str) -> String {
        match &self.given {
            Some(given) => format!(
                "{name} {given} disagrees with the recorded contract ({})",
                self.recorded
            ),
            None => format!(
                "{name} disagrees with the recorded contract ({})",
                self.recorded
            ),
        }
    }
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(self.field.as_str()))
    }
}

/// Contract values as a command was given them (flags or environment); `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct ContractFlags {
    pub dq_policy: Option<RecordedPolicy>,
    /// `--no-dq-policy` (only meaningful to `amend`).
    pub no_dq_policy: bool,
    pub require_approval: Option<bool>,
    pub staging_table: Option<String>,
    pub target_table: Option<String>,
    pub promotion_job_id: Option<i64>,
    pub rollback_job_id: Option<i64>,
}

impl ContractFlags {
    /// Every given value that disagrees with the contract, naming the value, what was
    /// given and what is recorded. Empty when everything given agrees.
    pub fn disagreements(&self, c: &PromotionContract) -> Vec<Disagreement> {
        let recorded_policy = c.dq_policy.as_ref().map_or_else(
            || "no policy".to_owned(),
            |p| format!("sha256 {}", p.sha256),
        );
        let mut out = Vec::new();
        if let Some(p) = &self.dq_policy
            && c.dq_policy.as_ref().map(|r| &r.sha256) != Some(&p.sha256)
        {
            out.push(Disagreement {
                field: ContractField::DqPolicy,
                given: Some(format!("{} (sha256 {})", p.source, p.sha256)),
                recorded: recorded_policy.clone(),
            });
        }
        if self.no_dq_policy && c.dq_policy.is_some() {
            out.push(Disagreement {
                field: ContractField::NoDqPolicy,
                given: None,
                recorded: recorded_policy,
            });
        }
        let mut check = |field: ContractField, given: Option<String>, recorded: String| {
            if let Some(given) = given
                && given != recorded
            {
                out.push(Disagreement {
                    field,
                    given: Some(given),
                    recorded,
                });
            }
        };
        check(
            ContractField::RequireApproval,
            self.require_approval.map(|b| b.to_string()),
            c.require_approval.to_string(),
        );
        check(
            ContractField::StagingTable,
            self.staging_table.clone(),
            c.staging_table.clone(),
        );
        check(
            ContractField::TargetTable,
            self.target_table.clone(),
            c.target_table.clone(),
        );
        check(
            ContractField::PromotionJobId,
            self.promotion_job_id.map(|j| j.to_string()),
            c.promotion_job.job_id.to_string(),
        );
        check(
            ContractField::RollbackJobId,
            self.rollback_job_id.map(|j| j.to_string()),
            c.rollback_job.job_id.to_string(),
        );
        out
    }

    /// The contract with the given values applied; the jobs are re-read from Databricks
    /// (a changed job definition is recorded anew). The staging table cannot change: the
    /// runs already wrote there.
    pub async fn amend(
        &self,
        client: &DatabricksClient,
        c: &PromotionContract,
    ) -> Result<PromotionContract, ReconcileError> {
        if let Some(t) = &self.staging_table
            && t != &c.staging_table
        {
            return Err(ReconcileError::StagingTableFixed {
                recorded: c.staging_table.clone(),
                given: t.clone(),
            });
        }
        let dq_policy = if self.no_dq_policy {
            None
        } else {
            self.dq_policy.clone().or_else(|| c.dq_policy.clone())
        };
        Ok(PromotionContract {
            dq_policy,
            require_approval: self.require_approval.unwrap_or(c.require_approval),
            staging_table: c.staging_table.clone(),
            target_table: self
                .target_table
                .clone()
                .unwrap_or_else(|| c.target_table.clone()),
            promotion_job: recorded_job(
                client,
                self.promotion_job_id.unwrap_or(c.promotion_job.job_id),
            )
            .await?,
            rollback_job: recorded_job(
                client,
                self.rollback_job_id.unwrap_or(c.rollback_job.job_id),
            )
            .await?,
        })
    }
}

/// The contract a backfill's promotion or rollback runs under, with its version.
pub(crate) async fn contract_of(
    ledger: &Ledger,
    backfill_id: &BackfillId,
) -> Result<(i64, PromotionContract), ReconcileError> {
    ledger
        .contract(backfill_id)
        .await?
        .map(|c| (c.version, c.contract))
        .ok_or_else(|| ReconcileError::NoContract(backfill_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_RULE: &str = "[[rule]]\nname = \"n\"\ncheck = \"present\"\nmetrics = [\"a\"]\n";

    fn contract() -> PromotionContract {
        let job = |id| RecordedJob {
            job_id: id,
            name: None,
            settings_hash: "h".into(),
        };
        PromotionContract {
            dq_policy: Some(recorded_policy(ONE_RULE, "p.toml").unwrap()),
            require_approval: true,
            staging_table: "main.s.t".into(),
            target_table: "main.g.t".into(),
            promotion_job: job(2),
            rollback_job: job(3),
        }
    }

    #[test]
    fn agreeing_flags_pass_and_each_disagreement_is_named() {
        let c = contract();
        let agree = ContractFlags {
            dq_policy: Some(recorded_policy(ONE_RULE, "elsewhere.toml").unwrap()),
            require_approval: Some(true),
            target_table: Some("main.g.t".into()),
            promotion_job_id: Some(2),
            ..ContractFlags::default()
        };
        assert!(agree.disagreements(&c).is_empty());
        let disagree = ContractFlags {
            dq_policy: Some(
                recorded_policy(&ONE_RULE.replace("\"a\"", "\"b\""), "new.toml").unwrap(),
            ),
            require_approval: Some(false),
            target_table: Some("main.g.typo".into()),
            rollback_job_id: Some(9),
            ..ContractFlags::default()
        };
        let found = disagreements_text(&disagree, &c);
        for field in [
            "dq policy",
            "approval required",
            "target table",
            "rollback job id",
        ] {
            assert!(found.contains(field), "{field} missing from {found}");
        }
        assert!(
            found.contains("main.g.typo") && found.contains("main.g.t"),
            "{found}"
        );
    }

    fn disagreements_text(f: &ContractFlags, c: &PromotionContract) -> String {
        f.disagreements(c)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_policy_that_does_not_parse_is_not_recorded() {
        assert!(recorded_policy("[[rule]]\nname = 1\n", "bad.toml").is_err());
        assert!(recorded_policy("", "empty.toml").is_err());
    }
}
