//! A private, throwaway RabbitMQ node on its own loopback ports, for tests that restart
//! the broker or change its settings without disturbing anything else.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

#[derive(Debug)]
pub struct PrivateBroker {
    pub port: u16,
    pub node: String,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a private node boots.
#[derive(Debug, Default, Clone)]
pub struct NodeOptions {
    /// An Erlang cookie to share with other nodes (a random one of its own otherwise).
    pub cookie: Option<String>,
    /// More `rabbitmq.conf` lines.
    pub config: String,
}

impl PrivateBroker {
    /// Boots a node (about 10 to 20 s) and waits until it accepts work. Blocking.
    pub fn start() -> Self {
        let broker = Self::spawn(&NodeOptions::default());
        broker.await_startup();
        broker
    }

    /// Starts booting a node and returns at once: several can boot side by side, each
    /// then awaited with [`PrivateBroker::await_startup`].
    pub fn spawn(options: &NodeOptions) -> Self {
        assert!(
            std::path::Path::new(SERVER).exists(),
            "RabbitMQ is not installed at {SERVER}"
        );
        let id = super::unique();
        let dir = std::env::temp_dir().join(format!("bfnode-{id}"));
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("rabbit.conf"),
            format!(
                "listeners.tcp.default = {port}\nloopback_users = none\n{}",
                options.config
            ),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        if let Some(cookie) = &options.cookie {
            // The node and rabbitmqctl both read it from HOME; Erlang insists on 0400.
            use std::os::unix::fs::PermissionsExt;
            let path = dir.join(".erlang.cookie");
            std::fs::write(&path, cookie).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        let mut broker = Self {
            port,
            node: format!("bf{id}@localhost"),
            dir,
            child: None,
        };
        let log = std::fs::File::create(broker.dir.join("log/console.log")).unwrap();
        let mut server = Command::new(SERVER);
        let child = broker
            .env(&mut server)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start a private RabbitMQ node");
        broker.child = Some(child);
        broker
    }

    /// Kills the node's Erlang VM with SIGKILL (no goodbye to clients or peers) and
    /// waits until its AMQP port is closed.
    pub fn kill(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid} failed");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        self.wait_port_closed();
    }

    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let d = &self.dir;
        cmd.env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbit"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
    }

    /// `rabbitmqctl -n NODE args...`
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.env(&mut Command::new(CTL))
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .output()
            .expect("rabbitmqctl")
    }

    /// Waits (up to 90 s) until the node runs and its broker application is up.
    pub fn await_startup(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.ctl(&["--timeout", "30", "await_startup"]);
            if out.status.success() {
                return;
            }
            let console =
                std::fs::read_to_string(self.dir.join("log/console.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "private node did not start: {}\n{console}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the broker application (connections drop, queues stay on disk).
    pub fn stop_app(&self) {
        assert!(self.ctl(&["stop_app"]).status.success());
    }

    pub fn start_app(&self) {
        assert!(self.ctl(&["start_app"]).status.success());
        self.await_startup();
    }

    /// Sets the global `consumer_timeout` (milliseconds) and checks it every second
    /// (the channel tick, 60 s by default) on channels opened from now on.
    pub fn set_consumer_timeout(&self, ms: u64) {
        for expr in [
            format!("application:set_env(rabbit, consumer_timeout, {ms})."),
            "application:set_env(rabbit, channel_tick_interval, 1000).".to_owned(),
        ] {
            assert!(self.ctl(&["eval", &expr]).status.success(), "{expr}");
        }
    }

    /// The node's main log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log").join(format!("{}.log", self.node))
    }

    pub fn wait_port_closed(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        // A node that would not stop (still booting, say) must not outlive the test.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
