//! A private `redis-server` on a free loopback port, for tests that pause it (SIGSTOP/SIGCONT)
//! or kill it; killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateRedis {
    child: Child,
    pub url: String,
    port: u16,
    /// Where a durable server keeps its append-only file (`None`: nothing persisted).
    dir: Option<std::path::PathBuf>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        Self::launch(free_port(), None).await
    }

    /// A server that writes every change to its append-only file before answering, so a
    /// [`PrivateRedis::crash_and_restart`] keeps everything it acknowledged.
    pub async fn start_durable() -> Self {
        let n: u64 = rand::random();
        let dir = std::env::temp_dir().join(format!("cv-private-redis-{n:016x}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self::launch(free_port(), Some(dir)).await
    }

    /// SIGKILL (commands still in its socket buffers are lost, as in a crash), then the same
    /// server again on the same port, from its append-only file.
    pub async fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let restarted = Self::launch(self.port, self.dir.take()).await;
        *self = restarted;
    }

    async fn launch(port: u16, dir: Option<std::path::PathBuf>) -> Self {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match &dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => command.args(["--appendonly", "no"]),
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str()).unwrap();
        for _ in 0..100 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Self {
                    child,
                    url,
                    port,
                    dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("private redis-server did not start");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Freezes the server: connections stay open, nothing is answered (a stall).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// A direct connection, for checks on what is stored.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Keys matching `pattern`.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
