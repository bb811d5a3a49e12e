//! A 3-node JetStream cluster on loopback, for chaos tests that kill a node:
//! each node is a real nats-server with Bazaar's config and users (the same
//! random passwords on every node), its own store directory and a route to
//! the other two. Every node is killed when the cluster drops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::{Client, ConnectOptions};
use platform::nats_server::{self, free_port, NatsServer};
use tempfile::TempDir;

/// Nodes in a [`TestCluster`].
pub const CLUSTER_SIZE: usize = 3;

/// Three clustered nats-servers on free loopback ports.
#[derive(Debug)]
pub struct TestCluster {
    nodes: Vec<NatsServer>,
    passwords: BTreeMap<&'static str, String>,
    dir: TempDir,
}

impl TestCluster {
    /// Starts three nodes and waits (up to `within`) until the cluster can
    /// create a stream with three replicas, i.e. it has a JetStream meta
    /// leader and every peer has joined.
    pub async fn start(within: Duration) -> TestCluster {
        let cluster =
            Self::try_start().unwrap_or_else(|e| panic!("cannot start the cluster: {e:#}"));
        cluster.wait_for_r3(within).await;
        cluster
    }

    fn try_start() -> anyhow::Result<TestCluster> {
        let dir = tempfile::Builder::new()
            .prefix("bazaar-cluster-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let bin = nats_server::locate()?;
        let passwords: BTreeMap<&'static str, String> = nats_server::USERS
            .into_iter()
            .map(|user| (user, nats_server::random_password()))
            .collect();
        let mut client_ports = Vec::new();
        let mut route_ports = Vec::new();
        for _ in 0..CLUSTER_SIZE {
            client_ports.push(free_port().context("cannot find a free port")?);
            route_ports.push(free_port().context("cannot find a free port")?);
        }
        let routes: Vec<String> = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let mut nodes = Vec::new();
        for n in 0..CLUSTER_SIZE {
            let node_dir = dir.path().join(format!("node{n}"));
            let config = nats_server::write_config(&node_dir.join("config"))
                .context("cannot write the nats config")?;
            let cluster_block = format!(
                "\ncluster {{\n  name: bazaar-test\n  listen: 127.0.0.1:{}\n  routes: [\n    {}\n  ]\n}}\n",
                route_ports[n],
                routes.join("\n    ")
            );
            let mut text = std::fs::read_to_string(&config).context("cannot read the config")?;
            text.push_str(&cluster_block);
            std::fs::write(&config, text).context("cannot write the cluster config")?;
            let mut builder = NatsServer::builder(&node_dir)
                .bin(&bin)
                .config_file(config)
                .port(client_ports[n])
                .name(format!("bazaar-{}-node{n}", std::process::id()));
            for (user, password) in &passwords {
                builder = builder.env(nats_server::password_env_var(user), password);
            }
            nodes.push(builder.start()?);
        }
        Ok(TestCluster {
            nodes,
            passwords,
            dir,
        })
    }

    /// Creates and deletes a probe stream with three replicas until that
    /// works; panics after `within`.
    async fn wait_for_r3(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let client = self.connect().await;
        let js = async_nats::jetstream::new(client);
        let probe = StreamConfig {
            name: "CLUSTER_PROBE".to_owned(),
            subjects: vec!["cluster.probe".to_owned()],
            storage: StorageType::File,
            num_replicas: CLUSTER_SIZE,
            ..Default::default()
        };
        let mut last = String::new();
        while Instant::now() < deadline {
            let attempt = tokio::time::timeout(Duration::from_secs(5), async {
                js.create_stream(probe.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                js.delete_stream("CLUSTER_PROBE")
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
            match attempt {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => last = e,
                Err(_) => last = "timed out".to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the cluster could not create an R3 stream within {within:?}: {last}");
    }

    /// Every node's URL, comma separated (as `NATS_URL` takes them).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's URL.
    pub fn url_of(&self, node: usize) -> String {
        self.nodes[node].url()
    }

    /// One node's server name (as stream and consumer infos name leaders).
    pub fn name_of(&self, node: usize) -> &str {
        self.nodes[node].name()
    }

    /// The node with this server name.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == name)
    }

    /// The password of one of [`nats_server::USERS`] (the same on every node).
    pub fn password_for(&self, user: &str) -> &str {
        match self.passwords.get(user) {
            Some(password) => password,
            None => panic!("nats/users.conf defines no user {user:?}"),
        }
    }

    /// Every user and its password, for [`crate::ShopBuilder::external_nats`].
    pub fn passwords(&self) -> BTreeMap<String, String> {
        self.passwords
            .iter()
            .map(|(user, password)| ((*user).to_owned(), password.clone()))
            .collect()
    }

    /// Connects as `ops` to every node (the client fails over between them).
    pub async fn connect(&self) -> Client {
        let urls = self.urls();
        let servers: Vec<&str> = urls.split(',').collect();
        let options = ConnectOptions::with_user_and_password(
            "ops".to_owned(),
            self.password_for("ops").to_owned(),
        )
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempt| Duration::from_millis((50 * attempt as u64).min(500)));
        match options.connect(servers).await {
            Ok(client) => client,
            Err(e) => panic!("cannot connect to the cluster at {urls}: {e}"),
        }
    }

    /// Kills one node with SIGKILL, as a crash would.
    pub fn kill(&mut self, node: usize) {
        if let Err(e) = self.nodes[node].kill() {
            panic!("cannot kill node {node}: {e}");
        }
    }

    /// Starts a node again on the same ports and store.
    pub fn restart(&mut self, node: usize) {
        if let Err(e) = self.nodes[node].restart() {
            panic!("cannot restart node {node}: {e}");
        }
    }

    /// Whether a node's process is alive.
    pub fn is_running(&mut self, node: usize) -> bool {
        self.nodes[node].is_running()
    }

    /// Where the nodes keep their stores, configs and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
