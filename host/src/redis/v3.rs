//! `spin:redis/redis@3.0.0`: async in WIT (WASIp3 components). Every function borrows the
//! store only to clone the [`Connection`] out of the table (or push a new one), and awaits
//! Redis without holding it, so one instance can have many Redis calls in flight.

use wasmtime::component::{Accessor, Linker, Resource};

use super::{Connection, HasRedis, RedisCtxView, RedisError, RedisParam, RedisValue};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/spin-redis@3.0.0",
        inline: "
            package redwasm:redis-v3;
            world redis-v3 { import spin:redis/redis@3.0.0; }
        ",
        world: "redwasm:redis-v3/redis-v3",
        // Async WIT functions are `async | store` already; `trappable` so a dangling
        // resource handle (a host bug) traps while Redis failures stay guest-visible.
        imports: { default: trappable },
        with: { "spin:redis/redis.connection": crate::redis::Connection },
    });
}

use bindings::spin::redis::redis as wit;

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> RedisCtxView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasRedis>(linker, f)
}

impl From<RedisError> for wit::Error {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::InvalidAddress => wit::Error::InvalidAddress,
            RedisError::TooManyConnections => wit::Error::TooManyConnections,
            RedisError::TypeError => wit::Error::TypeError,
            RedisError::Other(msg) => wit::Error::Other(msg),
        }
    }
}

fn param(p: wit::RedisParameter) -> RedisParam {
    match p {
        wit::RedisParameter::Int64(i) => RedisParam::Int64(i),
        wit::RedisParameter::Binary(b) => RedisParam::Binary(b),
    }
}

fn result(v: RedisValue) -> wit::RedisResult {
    match v {
        RedisValue::Nil => wit::RedisResult::Nil,
        RedisValue::Status(s) => wit::RedisResult::Status(s),
        RedisValue::Int64(i) => wit::RedisResult::Int64(i),
        RedisValue::Binary(b) => wit::RedisResult::Binary(b),
    }
}

type WitResult<T> = wasmtime::Result<Result<T, wit::Error>>;

/// Clones the connection out of the table; the store borrow ends before any `.await`.
fn conn<T>(
    acc: &Accessor<T, HasRedis>,
    handle: &Resource<Connection>,
) -> wasmtime::Result<Connection> {
    acc.with(|mut access| Ok(access.get().table.get(handle)?.clone()))
}

impl wit::Host for RedisCtxView<'_> {}

impl wit::HostConnection for RedisCtxView<'_> {
    fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl<T: Send> wit::HostConnectionWithStore<T> for HasRedis {
    async fn open(acc: &Accessor<T, Self>, address: String) -> WitResult<Resource<Connection>> {
        acc.with(|mut access| {
            let view = access.get();
            match view.ctx.open(&address) {
                Ok(conn) => Ok(Ok(view.table.push(conn)?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    async fn publish(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> WitResult<()> {
        let conn = conn(acc, &this)?;
        Ok(conn.publish(&channel, payload).await.map_err(Into::into))
    }

    async fn get(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
    ) -> WitResult<Option<Vec<u8>>> {
        let conn = conn(acc, &this)?;
        Ok(conn.get(&key).await.map_err(Into::into))
    }

    async fn set(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> WitResult<()> {
        let conn = conn(acc, &this)?;
        Ok(conn.set(&key, value).await.map_err(Into::into))
    }

    async fn incr(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
    ) -> WitResult<i64> {
        let conn = conn(acc, &this)?;
        Ok(conn.incr(&key).await.map_err(Into::into))
    }

    async fn del(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        keys: Vec<String>,
    ) -> WitResult<u32> {
        let conn = conn(acc, &this)?;
        Ok(conn.del(keys).await.map_err(Into::into))
    }

    async fn sadd(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> WitResult<u32> {
        let conn = conn(acc, &this)?;
        Ok(conn.sadd(&key, values).await.map_err(Into::into))
    }

    async fn smembers(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
    ) -> WitResult<Vec<String>> {
        let conn = conn(acc, &this)?;
        Ok(conn.smembers(&key).await.map_err(Into::into))
    }

    async fn srem(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> WitResult<u32> {
        let conn = conn(acc, &this)?;
        Ok(conn.srem(&key, values).await.map_err(Into::into))
    }

    async fn execute(
        acc: &Accessor<T, Self>,
        this: Resource<Connection>,
        command: String,
        arguments: Vec<wit::RedisParameter>,
    ) -> WitResult<Vec<wit::RedisResult>> {
        let conn = conn(acc, &this)?;
        let args = arguments.into_iter().map(param).collect();
        Ok(conn
            .execute(&command, args)
            .await
            .map(|values| values.into_iter().map(result).collect())
            .map_err(Into::into))
    }
}
