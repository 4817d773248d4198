//! `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0` on Redis.
//!
//! # Layout
//! - [`KvCtx`]: one component's stores: the labels it declares (`key_value_stores` in the
//!   manifest), each mapped to a Redis address by the host (default: the host's Redis).
//! - [`Store`]: an open store: one Redis hash per (component, label), reached through the
//!   component's own Redis context, so the sandbox, its ACL user and its per-call budgets
//!   apply to key-value calls as to raw Redis calls.
//! - `v2` / `v3`: the WIT bindings (v3 only on the concurrent engine).
//!
//! # Why one hash per store
//! `get-keys` must list one store's keys without `KEYS` or a `SCAN` over the server: with
//! every entry a field of the store's hash (`<component>:~kv:<label>`), `get-keys` is
//! `HKEYS` of that hash and nothing else. Set, get, delete and exists are single commands.
//! The cost: no per-entry expiry (Spin's interface has none) and one store lives in one Redis
//! Cluster slot.

mod v2;
mod v3;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::redis::{Connection, RedisCtx, RedisError, RedisParam, RedisValue};

/// Longest key a guest may use, in bytes (Spin's interface asks for at least 256).
pub const MAX_KEY_BYTES: usize = 1024;
/// Stores one instance may have open at once.
pub const MAX_OPEN_STORES: usize = 64;

/// A guest-visible key-value failure (the WIT `error` variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// Too many stores open in this instance.
    StoreTableFull,
    /// The label is declared but the host maps it to nothing usable.
    NoSuchStore,
    /// The component does not declare the label in `key_value_stores`.
    AccessDenied,
    /// Anything else (Redis down, a key over the limit, ...).
    Other(String),
}

impl From<RedisError> for KvError {
    fn from(e: RedisError) -> Self {
        KvError::Other(match e {
            RedisError::InvalidAddress => "the store's Redis address is invalid".to_string(),
            RedisError::TooManyConnections => "too many Redis connections".to_string(),
            RedisError::TypeError => "the store's Redis hash holds another type".to_string(),
            RedisError::Other(msg) => msg,
        })
    }
}

/// One component's key-value stores. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KvCtx {
    redis: RedisCtx,
    /// Declared labels.
    labels: Arc<BTreeSet<String>>,
    /// Label → Redis address, where the host maps it elsewhere than its own Redis.
    addresses: Arc<BTreeMap<String, String>>,
    /// Stores open in this instance.
    open: Arc<AtomicUsize>,
}

impl KvCtx {
    /// The stores of the component whose Redis context is `redis`: `labels` as declared in
    /// the manifest; `addresses` maps labels to Redis addresses (others use the host's Redis).
    pub fn new(
        redis: RedisCtx,
        labels: impl IntoIterator<Item = String>,
        addresses: BTreeMap<String, String>,
    ) -> Self {
        KvCtx {
            redis,
            labels: Arc::new(labels.into_iter().collect()),
            addresses: Arc::new(addresses),
            open: Arc::default(),
        }
    }

    /// This store's view of the component's Redis context (its per-call budget).
    pub fn for_store(&self, redis: RedisCtx) -> Self {
        KvCtx {
            redis,
            open: Arc::default(),
            ..self.clone()
        }
    }

    /// Opens store `label`: `AccessDenied` unless the component declares it.
    pub fn open(&self, label: &str) -> Result<Store, KvError> {
        if !self.labels.contains(label) {
            tracing::debug!(component = %self.redis.component(), label, "key-value: undeclared store");
            return Err(KvError::AccessDenied);
        }
        let address = self.addresses.get(label).map(String::as_str);
        let conn = self.redis.open_configured(address)?;
        // The sandbox prefixes `<component>:` itself; without it the id is written here, so
        // each component's stores stay apart either way.
        let hash = match self.redis.prefix() {
            Some(_) => format!("~kv:{label}"),
            None => format!("{}:~kv:{label}", self.redis.component()),
        };
        Ok(Store {
            conn,
            hash: Arc::from(hash),
        })
    }
}

/// An open store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    conn: Connection,
    /// The store's hash, as the component's connection names it.
    hash: Arc<str>,
}

impl Store {
    fn key(&self, key: &str) -> Result<Vec<RedisParam>, KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::Other(format!(
                "key is {} bytes; the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        Ok(vec![
            RedisParam::Binary(self.hash.as_bytes().to_vec()),
            RedisParam::Binary(key.as_bytes().to_vec()),
        ])
    }

    async fn run(&self, command: &str, args: Vec<RedisParam>) -> Result<Vec<RedisValue>, KvError> {
        Ok(self.conn.execute(command, args).await?)
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self.run("HGET", self.key(key)?).await?.as_slice() {
            [] | [RedisValue::Nil] => Ok(None),
            [RedisValue::Binary(value)] => Ok(Some(value.clone())),
            other => Err(KvError::Other(format!("unexpected reply {other:?}"))),
        }
    }

    /// Sets `key` to `value`. A value over the component's `max_redis_write_bytes` fails.
    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let mut args = self.key(key)?;
        args.push(RedisParam::Binary(value));
        self.run("HSET", args).await.map(drop)
    }

    /// Removes `key` (nothing happens when it is absent).
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.run("HDEL", self.key(key)?).await.map(drop)
    }

    /// Whether `key` has a value.
    pub async fn exists(&self, key: &str) -> Result<bool, KvError> {
        match self.run("HEXISTS", self.key(key)?).await?.as_slice() {
            [RedisValue::Int64(n)] => Ok(*n == 1),
            other => Err(KvError::Other(format!("unexpected reply {other:?}"))),
        }
    }

    /// Every key of this store (and only of this store).
    pub async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        let reply = self
            .run(
                "HKEYS",
                vec![RedisParam::Binary(self.hash.as_bytes().to_vec())],
            )
            .await?;
        reply
            .into_iter()
            .map(|v| match v {
                RedisValue::Binary(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                other => Err(KvError::Other(format!("unexpected reply {other:?}"))),
            })
            .collect()
    }
}

/// What the key-value bindings need from a store: the component's stores and the store's
/// resource table.
pub struct KvCtxView<'a> {
    /// The component's key-value context.
    pub ctx: &'a KvCtx,
    /// The store's resource table (holds the guests' `store` resources).
    pub table: &'a mut ResourceTable,
}

impl KvCtxView<'_> {
    /// Opens `label` and pushes the store into the table, within [`MAX_OPEN_STORES`].
    fn open(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<wasmtime::component::Resource<Store>, KvError>> {
        let store = match self.ctx.open(label) {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        if self.ctx.open.fetch_add(1, Ordering::Relaxed) >= MAX_OPEN_STORES {
            self.ctx.open.fetch_sub(1, Ordering::Relaxed);
            return Ok(Err(KvError::StoreTableFull));
        }
        match self.table.push(store) {
            Ok(handle) => Ok(Ok(handle)),
            Err(_) => {
                self.ctx.open.fetch_sub(1, Ordering::Relaxed);
                Ok(Err(KvError::StoreTableFull))
            }
        }
    }

    /// Closes a store handle.
    fn close(&mut self, handle: wasmtime::component::Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.ctx.open.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The [`HasData`] marker for the key-value bindings.
struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvCtxView<'a>;
}

/// Adds `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0` to `linker` (an
/// engine with component-model-async).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> KvCtxView<'_>,
) -> wasmtime::Result<()> {
    v2::add_to_linker(linker, f)?;
    v3::add_to_linker(linker, f)
}

/// Adds only `fermyon:spin/key-value@2.0.0` (an engine without component-model-async).
pub fn add_v2_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> KvCtxView<'_>,
) -> wasmtime::Result<()> {
    v2::add_to_linker(linker, f)
}
