//! The service runtime: what every Bazaar service is made of. `start`
//! connects to NATS and the database, runs migrations, declares the team's
//! stream and starts the outbox relay; the service then adds its command
//! endpoints, consumers and projections, and `run_until_stopped` serves
//! health and metrics until shutdown, then stops in order: stop pulling,
//! finish in-flight work, flush the outbox, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream::{self, Context};
use async_nats::service::ServiceExt;
use contracts::commands::{Reply, Request};
use contracts::Team;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServiceArgs;
use crate::consumer::{ConsumerHealth, EventHandler, Pulling};
use crate::control::{RegisteredConsumer, Registry};
use crate::db::{Db, Durability, Migrations};
use crate::health::Readiness;
use crate::outbox::Outbox;
use crate::projection::{ProjectionHandle, ProjectionSpec, Projector};
use crate::reaction::{InTx, Reaction};
use crate::streams::{self, ConsumerSpec};

/// How long stopping waits for the NATS client to send what it holds.
const FLUSH_AT_STOP: std::time::Duration = std::time::Duration::from_secs(2);

/// The default address of a service's health and metrics server.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:0";

pub struct Runtime {
    pub service: &'static str,
    pub instance: String,
    pub nats: async_nats::Client,
    pub js: Context,
    pub db: Db,
    pub outbox: Outbox,
    /// Cancels consumers, projections and endpoints (first shutdown stage).
    intake: CancellationToken,
    /// Cancels the outbox relay (last stage, after in-flight work is done).
    relay_stop: CancellationToken,
    workers: Vec<JoinHandle<()>>,
    relay: Option<JoinHandle<()>>,
    endpoints: Option<async_nats::service::Service>,
    projections: Vec<ProjectionHandle>,
    consumers: Vec<ConsumerHealth>,
    /// Projectors and handlers, for the operators' control plane.
    registry: Registry,
    listener: tokio::net::TcpListener,
}

impl Runtime {
    /// Connects everything a service needs. `team` is the team whose stream
    /// the service publishes to (None for the edge). Commits are durable.
    pub async fn start(
        service: &'static str,
        team: Option<Team>,
        args: &ServiceArgs,
        migrations: Option<&Migrations>,
    ) -> anyhow::Result<Runtime> {
        Runtime::start_with(service, team, args, migrations, Durability::Durable).await
    }

    /// [`Runtime::start`] with the database's commits as durable as
    /// `durability` says ([`Durability::Rebuildable`] only for a service
    /// whose database holds projections alone).
    pub async fn start_with(
        service: &'static str,
        team: Option<Team>,
        args: &ServiceArgs,
        migrations: Option<&Migrations>,
        durability: Durability,
    ) -> anyhow::Result<Runtime> {
        crate::metrics::install(service);
        let instance = args.instance_name(service);
        let addr: SocketAddr = match args.http_addr {
            Some(addr) => addr,
            None => DEFAULT_HEALTH_ADDR
                .parse()
                .context("default health address")?,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the HTTP server to {addr} (is the port in use?)"))?;

        let db = Db::connect_with(&args.database_url_for(service), durability).await?;
        if let Some(migrations) = migrations {
            db.migrate(migrations).await?;
        }
        let nats = crate::nats::connect(args, service).await?;
        let js = jetstream::new(nats.clone());
        // Only the team's own stream: another team's is created by its
        // owner, and consumers of it wait for that (`streams::wait_for`).
        if let Some(team) = team {
            streams::ensure(&js, streams::event_stream(team, args.stream_replicas)).await?;
        }
        streams::ensure_dlq(&js, args.stream_replicas).await?;

        let outbox = Outbox::new(db.clone(), js.clone());
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(outbox.clone().run(relay_stop.clone()));
        tracing::info!(%instance, db = ?db.backend(), "runtime started");
        Ok(Runtime {
            service,
            instance,
            nats,
            js,
            db,
            outbox,
            intake: CancellationToken::new(),
            relay_stop,
            workers: Vec::new(),
            relay: Some(relay),
            endpoints: None,
            projections: Vec::new(),
            consumers: Vec::new(),
            registry: Registry::default(),
            listener,
        })
    }

    /// The address the HTTP server listens on.
    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves a command or query subject (see [`crate::responder`]).
    pub async fn serve<Req, Resp, H, Fut>(
        &mut self,
        subject: &'static str,
        handler: H,
    ) -> anyhow::Result<()>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        H: Fn(Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply<Resp>> + Send + 'static,
    {
        let stop = self.intake.clone();
        let service = self.service_api().await?;
        let task = crate::responder::serve(service, subject, handler, stop).await?;
        self.workers.push(task);
        Ok(())
    }

    /// The NATS service API (started on first use) that serves commands,
    /// queries and the control plane.
    async fn service_api(&mut self) -> anyhow::Result<&async_nats::service::Service> {
        if self.endpoints.is_none() {
            let service = self
                .nats
                .service_builder()
                .description(format!("Bazaar {}", self.service))
                .start(self.service, env!("CARGO_PKG_VERSION"))
                .await
                .map_err(|e| anyhow::anyhow!("starting the NATS service API: {e}"))?;
            self.endpoints = Some(service);
        }
        self.endpoints
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("service API not started"))
    }

    /// Serves `ops.<service>.replay` and `ops.<service>.redeliver` (see
    /// [`crate::control`]) over what the service registered.
    async fn serve_control(&mut self) -> anyhow::Result<()> {
        let registry = std::mem::take(&mut self.registry);
        let (service, nats, js, db, stop) = (
            self.service,
            self.nats.clone(),
            self.js.clone(),
            self.db.clone(),
            self.intake.clone(),
        );
        let endpoints = self.service_api().await?;
        let tasks = crate::control::serve(endpoints, service, nats, js, db, registry, stop).await?;
        self.workers.extend(tasks);
        Ok(())
    }

    /// Starts a durable consumer (reactions; use the inbox in the handler).
    pub async fn consume<H: EventHandler>(
        &mut self,
        spec: ConsumerSpec,
        handler: H,
    ) -> anyhow::Result<()> {
        let handler = Arc::new(handler);
        self.registry.consumers.push(RegisteredConsumer {
            stream: spec.stream,
            durable: spec.durable.clone(),
            handler: handler.clone(),
        });
        let health = ConsumerHealth::new(&spec.durable, spec.stream);
        self.consumers.push(health.clone());
        let (js, service, stop) = (self.js.clone(), self.service, self.intake.clone());
        let task = tokio::spawn(async move {
            // The stream may be another team's that its owner has not created yet.
            let absent = || health.set(Pulling::NoStream);
            if streams::wait_for(&js, spec.stream, &stop, absent).await {
                crate::consumer::run(js, service, spec, handler, health, stop).await;
            }
        });
        self.workers.push(task);
        Ok(())
    }

    /// Starts a durable consumer whose handler is a [`Reaction`]: the
    /// platform opens and commits its transaction, with this service's
    /// database and outbox, and commits deliveries at hand together on
    /// SQLite (see [`crate::reaction`]).
    pub async fn react<R: Reaction>(
        &mut self,
        spec: ConsumerSpec,
        reaction: R,
    ) -> anyhow::Result<()> {
        let handler = InTx::new(self.db.clone(), self.outbox.clone(), reaction);
        self.consume(spec, handler).await
    }

    /// Starts a projection; readiness waits until it has caught up once.
    pub async fn project<P: Projector>(
        &mut self,
        spec: ProjectionSpec,
        projector: P,
    ) -> anyhow::Result<ProjectionHandle> {
        let (handle, task, live) = crate::projection::start(
            self.js.clone(),
            self.db.clone(),
            self.service,
            spec,
            projector,
            self.intake.clone(),
        );
        self.registry.projections.push(live);
        self.workers.push(task);
        self.projections.push(handle.clone());
        Ok(handle)
    }

    /// Counts a view the service feeds itself (see
    /// [`ProjectionHandle::detached`]) in readiness.
    pub fn track(&mut self, handle: ProjectionHandle) {
        self.projections.push(handle);
    }

    /// Runs a background task (a timer, a sweeper) that stops with the
    /// consumers, before the final outbox flush.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.workers.push(tokio::spawn(task(self.intake.clone())));
    }

    /// Health, readiness and metrics routes, to merge into an API router.
    pub fn health_router(&self) -> axum::Router {
        crate::health::router(Readiness {
            nats: self.nats.clone(),
            js: self.js.clone(),
            db: self.db.clone(),
            projections: Arc::new(self.projections.clone()),
            consumers: Arc::new(self.consumers.clone()),
        })
    }

    /// Serves HTTP (`router`, or health alone) until `shutdown` resolves,
    /// then shuts down in order.
    pub async fn run_until_stopped(
        mut self,
        router: Option<axum::Router>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.serve_control().await?;
        let router = router.unwrap_or_else(|| self.health_router());
        let addr = self.http_addr()?;
        tracing::info!(service = self.service, %addr, "listening");
        let http_stop = CancellationToken::new();
        let http_stopped = http_stop.clone();
        let listener = without_nagle(self.listener);
        let server = tokio::spawn(async move {
            // The peer address reaches handlers as `ConnectInfo` (the
            // edge's rate limiter keys anonymous callers by it).
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { http_stopped.cancelled().await })
            .await
        });

        shutdown.await;
        tracing::info!(service = self.service, "stopping: no new work");
        self.intake.cancel();
        if let Some(service) = self.endpoints.take() {
            let _ = service.stop().await;
        }
        for worker in self.workers.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(15), worker).await;
        }
        self.relay_stop.cancel();
        if let Some(relay) = self.relay.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), relay).await;
        }
        http_stop.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        // Bounded like every step above: with the broker gone the flush
        // would wait for it forever, and the process would never exit.
        // What it would have sent is safe: outbox rows stay until the
        // relay marks them sent, and a caller retries an unanswered command.
        match tokio::time::timeout(FLUSH_AT_STOP, self.nats.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "flushing the NATS connection"),
            Err(_) => tracing::warn!(
                "the NATS connection did not flush within {FLUSH_AT_STOP:?} (is the broker gone?); stopping anyway"
            ),
        }
        tracing::info!(service = self.service, "stopped");
        crate::telemetry::shutdown().await;
        Ok(())
    }
}

/// Connections accepted from `listener` with TCP_NODELAY. Without it a
/// response written in parts (an SSE stream's events, one by one) waits
/// for the client's delayed ACK, up to 40 ms on Linux, before its next
/// part leaves: that was most of an order's placed-to-settled time when
/// it was followed over SSE. Every Bazaar HTTP server takes its
/// connections through this (and so does the benchmark's peer).
pub fn without_nagle(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn set(tcp: &mut tokio::net::TcpStream) {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
        }
    }
    axum::serve::ListenerExt::tap_io(listener, set as fn(&mut tokio::net::TcpStream))
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_to_fill_a_segment() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let mut listener = super::without_nagle(listener);
        let client = tokio::net::TcpStream::connect(addr);
        let ((accepted, _peer), client) = tokio::join!(listener.accept(), client);
        let _client = client.expect("connecting");
        assert!(accepted.nodelay().expect("reading TCP_NODELAY"));
    }
}
