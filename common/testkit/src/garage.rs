//! [`GarageCluster`]: a multi-node Garage (S3-compatible, replicated) cluster on loopback, for
//! tests that run the stack against a distributed object store and kill a node under it.
//!
//! Each node has its own ports (RPC, S3 API, admin API) and directories under one temp dir, the
//! same `rpc_secret`, and the zone `dc{i}`; node 0 connects to the others, every node gets a
//! role (1 GB) and the layout is applied with `replication_factor` = the node count, so every
//! object has a copy on every node and reads and writes need a quorum of 2 of 3. One access key
//! with read/write on the bucket `ringcast` is imported. Readiness is the admin API's
//! `GetClusterHealth` answering `healthy` (every node up, every partition fully replicated).
//!
//! Needs `garage` 2.x on PATH or in `~/.cargo/bin` (`scripts/install-deps` installs it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ringcast_infra::config::{StoreBackend, StoreConfig};

use crate::http::Conn;
use crate::process::{free_port, wait_for_tcp, wait_until, Process};
use crate::servers::find_exe;
use crate::tempdir::TempDir;

/// Bucket every test uses.
pub const BUCKET: &str = "ringcast";
/// Region the S3 API answers to (SigV4).
pub const REGION: &str = "us-east-1";
const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
const SECRET_KEY: &str = "5ec2e7f0a5ec2e7f0a5ec2e7f0a5ec2e7f0a5ec2e7f0a5ec2e7f0a5ec2e7f0a0";
const ADMIN_TOKEN: &str = "ringcast-test-admin-token";
/// Longest wait for the cluster to form or heal.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

/// One node: its ports, config file and process (None while killed).
struct Node {
    rpc: u16,
    s3: u16,
    admin: u16,
    config: PathBuf,
    proc: Option<Process>,
}

/// A running Garage cluster; every node is killed on drop.
pub struct GarageCluster {
    nodes: Vec<Node>,
    dir: TempDir,
}

impl GarageCluster {
    /// Start `n` nodes (replication factor `n`), form the cluster, import the key, create the
    /// bucket, and wait until it is healthy.
    pub fn start(n: usize) -> Self {
        assert!((1..=7).contains(&n), "1 to 7 nodes");
        let dir = TempDir::new("garage");
        let secret = random_hex(32);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let (rpc, s3, admin) = (free_port(), free_port(), free_port());
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("garage node dir");
            let config = node_dir.join("garage.toml");
            let text = format!(
                "metadata_dir = \"{meta}\"\n\
                 data_dir = \"{data}\"\n\
                 db_engine = \"sqlite\"\n\
                 replication_factor = {n}\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\n\
                 s3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin}\"\n\
                 admin_token = \"{ADMIN_TOKEN}\"\n",
                meta = node_dir.join("meta").display(),
                data = node_dir.join("data").display(),
            );
            std::fs::write(&config, text).expect("garage config");
            nodes.push(Node {
                rpc,
                s3,
                admin,
                config,
                proc: None,
            });
        }
        let mut cluster = Self { nodes, dir };
        for i in 0..n {
            cluster.restart(i);
        }
        let ids: Vec<String> = (0..n).map(|i| cluster.node_id(i)).collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            cluster.garage(
                0,
                &[
                    "node",
                    "connect",
                    &format!("{id}@127.0.0.1:{}", cluster.nodes[i].rpc),
                ],
            );
        }
        for (i, id) in ids.iter().enumerate() {
            let zone = format!("dc{i}");
            cluster.garage(0, &["layout", "assign", "-z", &zone, "-c", "1G", id]);
        }
        cluster.garage(0, &["layout", "apply", "--version", "1"]);
        cluster.garage(
            0,
            &[
                "key", "import", "--yes", "-n", "ringcast", ACCESS_KEY, SECRET_KEY,
            ],
        );
        cluster.garage(0, &["bucket", "create", BUCKET]);
        cluster.garage(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "ringcast",
            ],
        );
        cluster.wait_healthy();
        cluster
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The S3 endpoint of node `i`.
    pub fn s3_endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3)
    }

    /// A store config for the services, through node `i`'s S3 API.
    pub fn store_config(&self, i: usize) -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::S3,
            endpoint: self.s3_endpoint(i),
            bucket: BUCKET.into(),
            region: REGION.into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            ..StoreConfig::default()
        }
    }

    /// Kill node `i` with SIGKILL (a crash: no flush, no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].proc.take() {
            p.signal(libc::SIGKILL);
            p.wait();
        }
    }

    /// Start node `i` (again) on its ports with its data, and wait until its admin API listens.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].proc.is_none(), "garage node {i} is running");
        let mut cmd = Command::new(find_exe("garage"));
        cmd.arg("-c").arg(&self.nodes[i].config).arg("server");
        cmd.env("RUST_LOG", "garage=warn");
        let log_dir = self.dir.path().join(format!("node{i}"));
        self.nodes[i].proc = Some(Process::spawn(&format!("garage{i}"), cmd, &log_dir));
        let admin: SocketAddr = ([127, 0, 0, 1], self.nodes[i].admin).into();
        wait_for_tcp(admin, Duration::from_secs(20));
        wait_for_tcp(
            ([127, 0, 0, 1], self.nodes[i].s3).into(),
            Duration::from_secs(20),
        );
    }

    /// `GetClusterHealth` of the admin API, asked of the first running node.
    pub fn health(&self) -> serde_json::Value {
        let node = self
            .nodes
            .iter()
            .find(|n| n.proc.is_some())
            .expect("a running garage node");
        let addr: SocketAddr = ([127, 0, 0, 1], node.admin).into();
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let r = Conn::connect(addr)
            .and_then(|mut c| {
                c.request(
                    "GET",
                    "/v2/GetClusterHealth",
                    &[("Authorization", &auth)],
                    b"",
                )
            })
            .unwrap_or_else(|e| panic!("garage admin API: {e}"));
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null)
    }

    /// Wait until every node is up and every partition has all its copies.
    pub fn wait_healthy(&self) {
        wait_until(CLUSTER_TIMEOUT, "the garage cluster to be healthy", || {
            self.health()["status"] == "healthy"
        });
    }

    /// Wait until the cluster sees node(s) down (status `degraded`: quorum still there).
    pub fn wait_degraded(&self) {
        wait_until(
            CLUSTER_TIMEOUT,
            "the garage cluster to see a node down",
            || self.health()["status"] == "degraded",
        );
    }

    /// The node's id (`garage node id -q`, without the address), once its RPC is up.
    fn node_id(&self, i: usize) -> String {
        let mut id = String::new();
        wait_until(Duration::from_secs(20), "garage node id", || {
            match self.try_garage(i, &["node", "id", "-q"]) {
                Ok(out) => {
                    id = out.trim().split('@').next().unwrap_or_default().to_string();
                    !id.is_empty()
                }
                Err(_) => false,
            }
        });
        id
    }

    /// Run `garage -c {node i's config} ARGS`; panics with its output when it fails.
    fn garage(&self, i: usize, args: &[&str]) -> String {
        self.try_garage(i, args)
            .unwrap_or_else(|e| panic!("garage {}: {e}", args.join(" ")))
    }

    fn try_garage(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let out = Command::new(find_exe("garage"))
            .arg("-c")
            .arg(&self.nodes[i].config)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// `bytes` random bytes as hex, from the kernel.
fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
