//! An in-process fleet for worker tests: a simulator, a SQLite ledger, a broker namespace,
//! a registered backfill, and workers started on demand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backfill_broker::{AmqpUrl, Broker, Destination, Headers, Lane};
use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::{ClientConfig, DatabricksClient, RequestRetry};
use backfill_ledger::{Ledger, LedgerError, PartitionState, PromotionContract};
use backfill_producer::{
    Order, ProduceError, ProduceRequest, publish_pending, register, request_rerun,
};
use backfill_simulator::{SimConfig, SimHandle, Simulator};
use backfill_worker::{PollPolicy, RetryPolicy, Worker, WorkerConfig, run_worker};
use tokio::task::JoinHandle;

use super::namespace::TestNamespace;
use tokio_util::sync::CancellationToken;

pub struct Fleet {
    pub sim: SimHandle,
    pub ledger: Ledger,
    pub client: DatabricksClient,
    pub broker: Broker,
    pub backfill_id: BackfillId,
    pub days: u32,
    pub ledger_url: String,
    workers: Vec<(CancellationToken, JoinHandle<()>)>,
    /// Declared last: dropped after the rest, the namespace is deleted (also on failure).
    pub topology: TestNamespace,
}

impl Drop for Fleet {
    /// Workers still running (a failed test) stop consuming before the namespace goes.
    fn drop(&mut self) {
        for (stop, _) in &self.workers {
            stop.cancel();
        }
    }
}

/// Fast settings: runs of a few hundred ms, checks every 200 ms, retries after 200 ms.
pub fn test_worker_config(name: &str) -> WorkerConfig {
    let mut c = WorkerConfig::new(name);
    c.concurrency = 8;
    c.poll = PollPolicy {
        first: Duration::from_millis(200),
        age_fraction: 0.25,
        max: Duration::from_secs(1),
        ..PollPolicy::default()
    };
    c.retry = RetryPolicy {
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    c.admission_delay = Duration::from_millis(200);
    c.outage_delay = Duration::from_millis(500);
    c.claim_lease = Duration::from_secs(2);
    c.shutdown_grace = Duration::from_secs(5);
    c.sweep_interval = Duration::from_millis(500);
    c.check_grace = Duration::from_secs(2);
    c
}

/// The promotion contract a test backfill is produced with.
#[derive(Debug, Clone)]
pub struct ContractSpec {
    /// A data-quality policy's text.
    pub policy: Option<&'static str>,
    pub require_approval: bool,
    pub target_table: &'static str,
}

impl Default for ContractSpec {
    fn default() -> Self {
        Self {
            policy: None,
            require_approval: false,
            target_table: "main.usage.daily_customer_usage",
        }
    }
}

impl ContractSpec {
    /// The contract as `produce` records it (jobs 2 and 3 read from the simulator).
    pub async fn record(&self, client: &DatabricksClient) -> PromotionContract {
        PromotionContract {
            dq_policy: self
                .policy
                .map(|p| backfill_reconciler::recorded_policy(p, "test-policy.toml").unwrap()),
            require_approval: self.require_approval,
            staging_table: "main.usage.daily_customer_usage_staging".into(),
            target_table: self.target_table.into(),
            promotion_job: backfill_reconciler::recorded_job(client, 2).await.unwrap(),
            rollback_job: backfill_reconciler::recorded_job(client, 3).await.unwrap(),
        }
    }
}

pub fn fast_sim() -> SimConfig {
    SimConfig {
        pending_ms: 100,
        running_ms: 200,
        ..SimConfig::default()
    }
}

/// [`fast_sim`] whose run of `date` reports `value` for the data-quality metric `metric`.
pub fn sim_with_metric(date: &str, metric: &str, value: serde_json::Value) -> SimConfig {
    let metrics = [(date.to_owned(), [(metric.to_owned(), value)].into())].into();
    SimConfig {
        metrics,
        ..fast_sim()
    }
}

impl Fleet {
    /// A backfill of `days` partitions from 2026-01-01, registered but not yet published.
    pub async fn new(days: u32, cap: i64, sim: SimConfig) -> Self {
        Self::new_on(days, cap, sim, &super::amqp_url()).await
    }

    /// The same, on another broker (a private node).
    pub async fn new_on(days: u32, cap: i64, sim: SimConfig, url: &AmqpUrl) -> Self {
        Self::build(days, cap, sim, url, &super::sqlite_url()).await
    }

    /// The same, with the ledger at `ledger_url`, and a contract without a policy.
    pub async fn build(
        days: u32,
        cap: i64,
        sim: SimConfig,
        url: &AmqpUrl,
        ledger_url: &str,
    ) -> Self {
        Self::build_with(days, cap, sim, url, ledger_url, ContractSpec::default()).await
    }

    /// The same, with the promotion contract `spec` recorded at produce.
    pub async fn build_with(
        days: u32,
        cap: i64,
        sim: SimConfig,
        url: &AmqpUrl,
        ledger_url: &str,
        spec: ContractSpec,
    ) -> Self {
        let sim = Simulator::spawn(sim).await.expect("simulator");
        let mut config = ClientConfig::new(sim.url(), "test-token");
        config.retry = RequestRetry {
            max_tries: 4,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
        };
        let client = DatabricksClient::new(config).unwrap();
        let ledger = super::ledger(ledger_url).await;
        let topology = super::test_topology_on(url);
        let broker = Broker::connect(url, &topology, "backfill test", Duration::from_secs(60))
            .await
            .expect("broker");
        let start: PartitionDate = "2026-01-01".parse().unwrap();
        let request = ProduceRequest {
            backfill_id: format!("bf-{}", super::unique()).parse().unwrap(),
            job_id: 1,
            start,
            end: PartitionDate::new(start.date() + chrono::Days::new(u64::from(days - 1))),
            params: BTreeMap::from([("code_version".to_owned(), "v1".to_owned())]),
            concurrency_cap: cap,
            order: Order::NewestFirst,
            created_by: "test".into(),
            contract: Some(spec.record(&client).await),
        };
        register(&ledger, &client, &request)
            .await
            .expect("register");
        Self {
            sim,
            ledger,
            client,
            topology,
            broker,
            backfill_id: request.backfill_id,
            days,
            ledger_url: ledger_url.to_owned(),
            workers: Vec::new(),
        }
    }

    pub async fn publish_all(&self) {
        publish_pending(
            &self.ledger,
            &self.broker.publisher(),
            &self.backfill_id,
            Order::NewestFirst,
            |_, _| {},
        )
        .await
        .expect("publish");
    }

    /// Publishes every partition and starts worker `w1`, then waits (60 s at most) until
    /// every partition has settled in a terminal state.
    pub async fn run_to_the_end(&mut self) {
        self.publish_all().await;
        self.start_worker("w1", None);
        super::eventually(
            "every partition settled",
            Duration::from_secs(60),
            || async {
                let ps = self.ledger.partitions(&self.backfill_id).await.unwrap();
                ps.iter().all(|p| p.state.is_terminal()).then_some(())
            },
        )
        .await;
    }

    /// The latest version of the backfill's promotion contract.
    pub async fn current_contract(&self) -> PromotionContract {
        let current = self.ledger.contract(&self.backfill_id).await.unwrap();
        current.expect("a recorded contract").contract
    }

    /// Records `amended` as the amendment of contract version `current`.
    pub async fn amend_contract(
        &self,
        current: i64,
        amended: &PromotionContract,
        by: &str,
        reason: &str,
    ) -> Result<i64, LedgerError> {
        self.ledger
            .amend_contract(&self.backfill_id, current, amended, by, reason)
            .await
    }

    /// Asks for a new attempt of `date`, as `backfill rerun` does.
    pub async fn request_rerun(
        &self,
        date: PartitionDate,
        by: &str,
        why: &str,
    ) -> Result<u32, ProduceError> {
        let publisher = self.broker.publisher();
        request_rerun(&self.ledger, &publisher, &self.backfill_id, date, by, why).await
    }

    pub fn worker(&self, name: &str) -> Arc<Worker> {
        Arc::new(Worker::new(
            test_worker_config(name),
            self.ledger.clone(),
            self.client.clone(),
        ))
    }

    /// Starts a worker (its own connection, through `url` if given).
    pub fn start_worker(&mut self, name: &str, url: Option<AmqpUrl>) {
        let worker = self.worker(name);
        self.start(worker, url);
    }

    /// Starts a worker built by the test (with metrics, say).
    pub fn start_built(&mut self, worker: Arc<Worker>) {
        self.start(worker, None);
    }

    fn start(&mut self, worker: Arc<Worker>, url: Option<AmqpUrl>) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_worker(
            worker,
            url.unwrap_or_else(super::amqp_url),
            self.topology.clone(),
            stop.clone(),
        ));
        let handle = tokio::spawn(async move {
            task.await.expect("worker task").expect("worker ran");
        });
        self.workers.push((stop, handle));
    }

    pub async fn publish_raw(&self, lane: Lane, body: &[u8]) {
        self.broker
            .publisher()
            .publish(Destination::Lane(lane), body, "raw", &Headers::new())
            .await
            .expect("publish raw");
    }

    /// The backfill's manifest id (what every message carries).
    pub async fn manifest_id(&self) -> String {
        self.ledger
            .backfill(&self.backfill_id)
            .await
            .unwrap()
            .unwrap()
            .manifest_id
    }

    /// The first (or only) partition's row as the ledger has it now.
    pub async fn first_partition(&self) -> backfill_ledger::Partition {
        self.ledger
            .partitions(&self.backfill_id)
            .await
            .unwrap()
            .remove(0)
    }

    /// A first-attempt trigger of `date` (YYYY-MM-DD), as the producer would send it.
    pub async fn trigger(&self, date: &str) -> backfill_contract::PartitionMessage {
        backfill_contract::PartitionMessage::new(
            self.backfill_id.clone(),
            date.parse().unwrap(),
            backfill_contract::Attempt::FIRST,
            self.manifest_id().await,
            backfill_contract::Step::Trigger,
        )
    }

    pub async fn count(&self, state: PartitionState) -> i64 {
        self.ledger.state_counts(&self.backfill_id).await.unwrap()[&state]
    }

    pub async fn wait_all_succeeded(&self, limit: Duration) {
        let total = i64::from(self.days);
        super::eventually("every partition to succeed", limit, || async {
            (self.count(PartitionState::Succeeded).await == total).then_some(())
        })
        .await;
    }

    /// Exactly one simulator run per partition, and one per partition only.
    pub fn assert_one_run_per_partition(&self) {
        let stats = self.sim.sim.stats();
        assert_eq!(
            stats.runs_per_partition.len(),
            self.days as usize,
            "{stats:?}"
        );
        assert!(
            stats.runs_per_partition.values().all(|n| *n == 1),
            "duplicate runs: {:?}",
            stats.runs_per_partition
        );
        assert_eq!(stats.runs_created, u64::from(self.days));
    }

    /// Waits (up to `limit`) for every partition to succeed, checks each ran exactly once,
    /// and stops the fleet: how a test that expects a clean finish ends.
    pub async fn ends_with_one_run_each(self, limit: Duration) {
        self.wait_all_succeeded(limit).await;
        self.assert_one_run_per_partition();
        self.stop().await;
    }

    pub async fn stop(mut self) {
        for (stop, handle) in self.workers.drain(..) {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
        }
        super::teardown(&self.broker).await;
    }
}
