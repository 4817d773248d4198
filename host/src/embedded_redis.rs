//! The embedded default: when no `REDIS_URL` is given, `redwasm serve` starts and owns a local
//! `redis-server`, listening only on a unix socket in a project-local data directory (no TCP
//! port, so nothing else on the machine can reach it or collide with it), with AOF on.
//!
//! The child is stopped (SIGTERM, then SIGKILL after a grace period) when the handle drops.
//!
//! It runs hardened for the sandbox ([`Hardening`]): what ACL users cannot bound (memory of
//! one string, the size of one reply, script CPU, crafted dump payloads) is bounded by the
//! server's own configuration. The same settings are what an operator puts in redis.conf.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Server settings that back the host's sandbox on a Redis it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// `busy-reply-threshold`: from then on, Redis answers other clients (`BUSY`) and accepts
    /// the watchdog's `SCRIPT KILL`. The host's `script_time_limit`.
    pub script_time_limit: Duration,
    /// `proto-max-bulk-len`: the largest string the server builds, also from inside a script
    /// (`SETRANGE`, `APPEND`, `SETBIT`); at least 1 MiB (Redis's minimum).
    pub max_value_bytes: u64,
    /// `client-output-buffer-limit normal`: a client whose pending reply grows past this is
    /// disconnected by Redis before the host reads it, so no reply makes the host buffer
    /// more than about this much.
    pub max_reply_bytes: u64,
}

impl Default for Hardening {
    fn default() -> Self {
        let pool = crate::redis::RedisPoolConfig::default();
        Hardening {
            script_time_limit: pool.script_time_limit,
            max_value_bytes: crate::redis::RedisLimits::default().max_write_bytes as u64,
            max_reply_bytes: pool.max_reply_bytes as u64,
        }
    }
}

impl Hardening {
    /// The `redis-server` arguments.
    pub fn args(&self) -> Vec<String> {
        let reply = (self.max_reply_bytes + (1 << 20)).to_string();
        [
            // RESTORE is denied to guests; a crafted payload from anywhere else still
            // cannot crash the server.
            "--sanitize-dump-payload",
            "yes",
            "--busy-reply-threshold",
            &self.script_time_limit.as_millis().max(1).to_string(),
            "--proto-max-bulk-len",
            &self.max_value_bytes.max(1 << 20).to_string(),
            "--client-output-buffer-limit",
            "normal",
            &reply,
            &reply,
            "0",
            "--enable-debug-command",
            "no",
            "--enable-module-command",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A `redis-server` child process owned by the host.
pub struct EmbeddedRedis {
    child: Option<Child>,
    socket: PathBuf,
}

impl EmbeddedRedis {
    /// Starts `redis-server` with its data (AOF and RDB) in `data_dir`, waits until it answers
    /// `PING` (at most `ready_timeout`), and returns the handle.
    pub async fn start(data_dir: &Path, ready_timeout: Duration) -> anyhow::Result<Self> {
        Self::start_hardened(data_dir, ready_timeout, &Hardening::default()).await
    }

    /// [`EmbeddedRedis::start`] with explicit [`Hardening`].
    pub async fn start_hardened(
        data_dir: &Path,
        ready_timeout: Duration,
        hardening: &Hardening,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("create Redis data dir {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolve {}", data_dir.display()))?;
        let socket = data_dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let binary = std::env::var_os("REDIS_SERVER_BIN").unwrap_or_else(|| "redis-server".into());
        let child = Command::new(&binary)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(&data_dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", "3600 1 300 100 60 10000"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(hardening.args())
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "start {:?}: install it (apt-get install redis-server) or set REDIS_URL",
                    binary
                )
            })?;
        let mut redis = EmbeddedRedis {
            child: Some(child),
            socket,
        };
        redis.wait_ready(ready_timeout).await?;
        Ok(redis)
    }

    /// The URL components use to reach it: `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("redis-server exited during start-up: {status}");
            }
            if ping(&self.socket).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer PING within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server: SIGTERM (it writes its AOF and exits), SIGKILL after 5 s.
    pub async fn stop(mut self) {
        self.terminate().await;
    }

    async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // `kill -TERM` instead of a libc call keeps this crate free of unsafe code.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        // `kill_on_drop` covers the paths that did not call `stop`.
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

async fn ping(socket: &Path) -> bool {
    let Ok(stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let (read, mut write) = stream.into_split();
    if write.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), reader.read_line(&mut line)).await,
        Ok(Ok(_))
    ) && line.starts_with("+PONG")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_answers_persists_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let redis = EmbeddedRedis::start(dir.path(), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(redis.url().starts_with("redis+unix://"));
        assert!(ping(&redis.socket).await);
        let socket = redis.socket.clone();
        redis.stop().await;
        assert!(!ping(&socket).await);
        assert!(
            dir.path().join("appendonlydir").exists(),
            "AOF is on: redis-server created its append-only dir"
        );
    }
}
