//! Serving the simulator: on a given listener until a shutdown future resolves, or on an
//! ephemeral loopback port for tests.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::{SimConfig, Simulator, router};

/// Serves `sim` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A simulator running in this process; stops when dropped.
#[derive(Debug)]
pub struct SimHandle {
    pub sim: Simulator,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, the value for `--databricks-host`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Simulator {
    /// Starts a simulator on an ephemeral loopback port in the current runtime.
    pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
        Simulator::new(config).serve_here().await
    }

    /// Serves this simulator on an ephemeral loopback port in the current runtime.
    pub async fn serve_here(self) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sim = self;
        let (tx, rx) = oneshot::channel::<()>();
        let served = sim.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = serve(listener, served, shutdown).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(SimHandle {
            sim,
            addr,
            stop: Some(tx),
        })
    }
}
