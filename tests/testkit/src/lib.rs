//! Test harness shared by every redwasm test: a real `redis-server` on a random loopback port,
//! in its own temporary directory, killed when the handle is dropped.
//!
//! # Layout
//! - [`RedisServer`]: start, address, stop/restart (for outage tests).
//!
//! No mocks: tests talk to the real server the way production does.

#![deny(missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process bound to `127.0.0.1:<random port>`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server (no persistence) and waits until it answers `PING`.
    ///
    /// Panics with a clear message when `redis-server` is not installed: the README's test
    /// command installs it.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Like [`RedisServer::start`], with extra `redis-server` arguments (e.g. `--requirepass`).
    pub fn start_with_args(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        // The port may have been taken between `free_port` and now; retry with new ports.
        for _ in 0..5 {
            let child = Command::new(redis_server_binary())
                .arg("--port")
                .arg(self.port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .arg("--logfile")
                .arg(self.dir.path().join("redis.log"))
                .args(&self.extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "redis-server must be installed (see README: the test command installs it)",
                );
            self.child = Some(child);
            if self.wait_ready(Duration::from_secs(10)) {
                return;
            }
            self.kill();
            self.port = free_port();
        }
        panic!("redis-server did not start on a free port after 5 attempts");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                let log =
                    std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                eprintln!("redis-server exited early: {log}");
                return false;
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// True when the server answers `PING` with `+PONG` (or `-NOAUTH`, which proves it is up).
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        let mut reader = BufReader::new(stream);
        reader.read_line(&mut line).is_ok()
            && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
    }

    /// Clients blocked in a command right now (`INFO clients`: `blocked_clients`), or `None`
    /// when the server does not answer.
    pub fn blocked_clients(&self) -> Option<u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream.write_all(b"INFO clients\r\n").ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        // `$<len>` then the text, line by line.
        reader.read_line(&mut line).ok()?;
        loop {
            line.clear();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(n) = line.trim().strip_prefix("blocked_clients:") {
                return n.parse().ok();
            }
        }
    }

    /// Waits (polling, at most 5 s) until at least `n` clients are blocked in a command: a
    /// BLPOP or XREAD BLOCK sent by the code under test has really reached the server.
    /// Panics when that does not happen.
    pub async fn wait_blocked(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let blocked = self.blocked_clients().unwrap_or(0);
            if blocked >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{blocked} blocked clients after 5 s, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (simulates an outage); [`RedisServer::restart`] brings it back on the
    /// same port.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same port after [`RedisServer::stop`].
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(redis_server_binary())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart redis-server");
        self.child = Some(child);
        assert!(
            self.wait_ready(Duration::from_secs(10)),
            "redis-server did not come back on port {}",
            self.port
        );
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `redis-server` to run: `$REDIS_SERVER_BIN` or the one on `PATH`.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let mut server = RedisServer::start();
        assert!(server.ping());
        server.stop();
        assert!(!server.ping());
        server.restart();
        assert!(server.ping());
    }
}
