//! The worker loop: consume both lanes with bounded concurrency, acknowledge only after a
//! message's follow-ups are confirmed, reconnect after losing the broker, drain on
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use backfill_broker::{
    AmqpUrl, Broker, BrokerError, Delivery, Lane, LaneConsumer, Publisher, Topology,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// Runs a worker until `shutdown` is cancelled: connects (retrying with backoff), serves
/// both lanes, reconnects after a lost connection. Returns after in-flight messages have
/// finished or the grace period has passed; anything unfinished goes back to its queue.
pub async fn run_worker(
    worker: Arc<Worker>,
    url: AmqpUrl,
    topology: Topology,
    shutdown: CancellationToken,
) -> Result<(), BrokerError> {
    let name = format!("backfill worker {}", worker.id());
    let heartbeat = worker.budget().cloned().map(|budget| {
        // Not ready until the rest of the fleet has counted this worker in the budget.
        let health = worker.metrics().clone();
        health.health.set_settling_api_share(true);
        let settled = budget.clone();
        tokio::spawn(async move {
            settled.wait_ready().await;
            health.health.set_settling_api_share(false);
        });
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = budget.refresh().await {
                    tracing::warn!(error = %e, "heartbeat failed; keeping the last known share of the API budget");
                }
                tokio::select! {
                    () = tokio::time::sleep(budget.heartbeat_interval()) => {}
                    () = stop.cancelled() => break,
                }
            }
            budget.leave().await;
        })
    });
    let result = connect_and_serve(&worker, &url, &topology, &shutdown, &name).await;
    if worker.misconfigured.is_cancelled() && result.is_ok() {
        // Taking no work, not ready, until an operator restarts it with other settings.
        shutdown.cancelled().await;
    }
    worker.metrics().health.start_draining();
    if let Some(h) = heartbeat {
        let _ = h.await;
    }
    result
}

async fn connect_and_serve(
    worker: &Arc<Worker>,
    url: &AmqpUrl,
    topology: &Topology,
    shutdown: &CancellationToken,
    name: &str,
) -> Result<(), BrokerError> {
    let metrics = worker.metrics().clone();
    let mut connections = 0u64;
    // Consecutive connections that failed soon after connecting: each waits longer before
    // the next (a quorum queue electing its leader refuses consumers for a moment; without
    // a pause every worker would cycle connect, declare, fail across the nodes).
    let mut short_lived = 0u32;
    loop {
        let broker = tokio::select! {
            b = Broker::connect(url, topology, name, Duration::from_secs(24 * 3600)) => b?,
            () = shutdown.cancelled() => return Ok(()),
        };
        connections += 1;
        if connections > 1 {
            metrics.worker.broker_reconnects.inc();
        }
        metrics.worker.broker_connected.set(1);
        metrics.health.set_broker(true);
        tracing::info!(worker = worker.id(), broker = %broker.node(), namespace = topology.namespace(), "worker connected");
        let connected_at = std::time::Instant::now();
        let served = serve(worker, &broker, shutdown).await;
        metrics.worker.broker_connected.set(0);
        metrics.health.set_broker(false);
        broker.close().await;
        match served {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(worker = worker.id(), error = %e, "lost the broker; reconnecting");
                if connected_at.elapsed() < Duration::from_secs(5) {
                    short_lived = (short_lived + 1).min(6);
                    let pause = Duration::from_millis(250 << short_lived)
                        .mul_f64(rand::random_range(0.5..1.0));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                } else {
                    short_lived = 0;
                }
            }
        }
    }
}

/// Serves one connection until shutdown (`Ok`) or until the connection fails (`Err`).
async fn serve(
    worker: &Arc<Worker>,
    broker: &Broker,
    shutdown: &CancellationToken,
) -> Result<(), BrokerError> {
    let prefetch = u16::try_from(worker.config.concurrency).unwrap_or(u16::MAX);
    let tag = |lane: Lane| format!("{}-{}", worker.id(), lane.key());
    let checks = broker
        .consume(Lane::Check, prefetch, &tag(Lane::Check))
        .await?;
    let triggers = broker
        .consume(Lane::Trigger, prefetch, &tag(Lane::Trigger))
        .await?;
    let tracker = TaskTracker::new();
    let publisher = broker.publisher();
    // Consuming stops on shutdown, or when a message shows this worker is misconfigured.
    let stop = shutdown.child_token();
    let misconfigured = {
        let (worker, stop) = (worker.clone(), stop.clone());
        tokio::spawn(async move {
            worker.misconfigured.cancelled().await;
            stop.cancel();
        })
    };
    // Stop being ready as soon as shutdown begins (the drain follows).
    let draining = {
        let (metrics, shutdown) = (worker.metrics().clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            metrics.health.start_draining();
        })
    };
    // Cancelled by any task that finds the publisher unusable: reconnect.
    let lost = CancellationToken::new();
    // Separate lanes with separate permits: checks of running runs never wait behind a
    // backlog of untriggered partitions.
    let served = tokio::try_join!(
        lane_loop(
            worker,
            &publisher,
            checks,
            Lane::Check,
            &stop,
            &lost,
            &tracker
        ),
        lane_loop(
            worker,
            &publisher,
            triggers,
            Lane::Trigger,
            &stop,
            &lost,
            &tracker
        ),
        sweep_loop(worker, &publisher, &stop, &lost),
    );
    draining.abort();
    misconfigured.abort();
    tracker.close();
    if served.is_ok() {
        let grace = worker.config.shutdown_grace;
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "grace period over; unfinished messages return to their queues"
            );
        }
    }
    served.map(|_| ())
}

/// Every `sweep_interval`, re-issues checks and triggers whose message was lost.
async fn sweep_loop(
    worker: &Arc<Worker>,
    publisher: &Publisher,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
) -> Result<(), BrokerError> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(worker.config.sweep_interval) => {}
            () = shutdown.cancelled() => return Ok(()),
            () = lost.cancelled() => return Err(publisher_lost()),
        }
        let swept = match worker.sweep_overdue_checks(publisher).await {
            Ok(_) => worker.sweep_overdue_triggers(publisher).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match swept {
            Ok(()) => {}
            Err(e) if e.is_broker() => lost.cancel(),
            Err(e) => {
                tracing::warn!(error = %e, "sweep for overdue checks and triggers failed; next sweep will retry")
            }
        }
    }
}

fn publisher_lost() -> BrokerError {
    BrokerError::Config("the publishing channel failed; reconnecting".into())
}

async fn lane_loop(
    worker: &Arc<Worker>,
    publisher: &Publisher,
    mut lane_consumer: LaneConsumer,
    lane: Lane,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), BrokerError> {
    let permits = Arc::new(Semaphore::new(worker.config.concurrency.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            () = shutdown.cancelled() => break,
            () = lost.cancelled() => return Err(publisher_lost()),
        };
        let delivery = tokio::select! {
            d = lane_consumer.next() => d?,
            () = shutdown.cancelled() => break,
            () = lost.cancelled() => return Err(publisher_lost()),
        };
        worker.metrics().worker.consumed(lane.key());
        let worker = worker.clone();
        let publisher = publisher.clone();
        let lost = lost.clone();
        tracker.spawn(async move {
            handle_delivery(worker, publisher, lane, delivery, lost).await;
            drop(permit);
        });
    }
    // Stop receiving: prefetched deliveries not yet handed out return to the queue, and
    // in-flight ones can still be acknowledged on their own channel... which stays open
    // until the connection closes after the grace period.
    lane_consumer.cancel().await;
    Ok(())
}

/// Handles one delivery, then acknowledges it, or returns it to the queue when its
/// follow-ups could not be published. A malformed message is dead-lettered here; every
/// other is handled in its message's span.
async fn handle_delivery(
    worker: Arc<Worker>,
    publisher: Publisher,
    lane: Lane,
    delivery: Delivery,
    lost: CancellationToken,
) {
    match Received::decode(&publisher, lane, delivery.body(), delivery.sent_ms()) {
        Ok(m) => {
            let span = m.span();
            async {
                let settled = handle_message(&worker, Arc::new(m), &lost).await;
                settle(&worker, lane, delivery, settled).await;
            }
            .instrument(span)
            .await
        }
        Err(invalid) => {
            // Nothing in it can be trusted to name a partition: its span names the lane.
            let span = tracing::error_span!("message", lane = lane.key());
            async {
                let reason = invalid.to_string();
                let dead = worker.dead_letter_invalid(&publisher, lane, delivery.body(), &reason);
                let settled = match dead.await {
                    Ok(handled) => {
                        log_handled(&handled);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not dead-letter a malformed message; returning it to the queue");
                        false
                    }
                };
                settle(&worker, lane, delivery, settled).await;
            }
            .instrument(span)
            .await
        }
    }
}

/// Handles a decoded message in its own task (so a panic cannot take the worker down)
/// and decides what follows a failure. Returns whether the delivery is settled (to be
/// acknowledged) or goes back to its queue.
async fn handle_message(worker: &Arc<Worker>, m: Arc<Received>, lost: &CancellationToken) -> bool {
    let outcome = {
        let (worker, m) = (worker.clone(), m.clone());
        tokio::spawn(async move { worker.handle(&m).await }.in_current_span()).await
    };
    match outcome {
        Ok(Ok(handled)) => {
            log_handled(&handled);
            true
        }
        Ok(Err(StepError::Foreign(why))) => {
            // Not ours: back to the queue undamaged, and this worker takes no more work.
            if !worker.misconfigured.is_cancelled() {
                tracing::error!(reason = %why, "this worker belongs to another fleet; it stops taking work and reports not ready");
                worker.metrics().health.set_misconfigured(why);
                worker.misconfigured.cancel();
            }
            false
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "could not handle message now; it will come back");
            match worker.after_error(&m, &error).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not delay message either; returning it to the queue");
                    if e.is_broker() {
                        lost.cancel();
                    }
                    false
                }
            }
        }
        Err(join_error) => worker.after_panic(&m, &join_error.to_string()).await,
    }
}

/// Acknowledges a settled delivery; returns an unsettled one to its queue after a pause.
/// Called in the message's span.
async fn settle(worker: &Worker, lane: Lane, delivery: Delivery, settled: bool) {
    if settled {
        match delivery.ack().await {
            Ok(true) => worker.metrics().worker.acked(lane.key()),
            Ok(false) => {
                tracing::info!("ack not delivered (channel gone); the message will be redelivered")
            }
            Err(BrokerError::Timeout { .. }) => {
                tracing::warn!("ack timed out; the message will be redelivered")
            }
            Err(e) => {
                tracing::info!(error = %e, "ack failed; the message will be redelivered")
            }
        }
    } else {
        // Pause first: a broker that refuses publishes (an alarm, a full queue) would
        // otherwise get the message straight back in a hot loop.
        tokio::time::sleep(worker.config.outage_delay).await;
        worker.metrics().worker.requeued(lane.key());
        let _ = delivery.requeue().await;
    }
}

fn log_handled(handled: &Handled) {
    match handled {
        Handled::Poisoned(reason) => tracing::warn!(reason, "malformed message dead-lettered"),
        other => tracing::debug!(outcome = ?other, "message handled"),
    }
}
