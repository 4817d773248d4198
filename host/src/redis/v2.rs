//! `fermyon:spin/redis@2.0.0`: synchronous in WIT, async on the host (the guest's call
//! suspends while the host awaits Redis). Only adapts types: the logic is [`Connection`]'s.

use wasmtime::component::{Linker, Resource};

use super::{Connection, HasRedis, RedisCtxView, RedisError, RedisParam, RedisValue};

mod bindings {
    // Only the redis interface: `fermyon:spin/variables` is bound by `crate::variables`.
    wasmtime::component::bindgen!({
        path: "../wit/deps/fermyon-spin@2.0.0",
        inline: "
            package redwasm:redis-v2;
            world redis-v2 { import fermyon:spin/redis@2.0.0; }
        ",
        world: "redwasm:redis-v2/redis-v2",
        // `trappable` only so a dangling resource handle (a host bug) traps; every Redis
        // failure is a guest-visible `error`.
        imports: { default: async | trappable },
        with: { "fermyon:spin/redis.connection": crate::redis::Connection },
    });
}

use bindings::fermyon::spin::redis as wit;

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

impl RedisCtxView<'_> {
    /// The connection behind a handle; cloned so no borrow of the table outlives the lookup.
    fn conn(&self, handle: &Resource<Connection>) -> wasmtime::Result<Connection> {
        Ok(self.table.get(handle)?.clone())
    }
}

impl wit::Host for RedisCtxView<'_> {}

impl wit::HostConnection for RedisCtxView<'_> {
    async fn open(&mut self, address: String) -> WitResult<Resource<Connection>> {
        match self.ctx.open(&address) {
            Ok(conn) => Ok(Ok(self.table.push(conn)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn publish(
        &mut self,
        this: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> WitResult<()> {
        let conn = self.conn(&this)?;
        Ok(conn.publish(&channel, payload).await.map_err(Into::into))
    }

    async fn get(&mut self, this: Resource<Connection>, key: String) -> WitResult<Option<Vec<u8>>> {
        let conn = self.conn(&this)?;
        Ok(conn.get(&key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        this: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> WitResult<()> {
        let conn = self.conn(&this)?;
        Ok(conn.set(&key, value).await.map_err(Into::into))
    }

    async fn incr(&mut self, this: Resource<Connection>, key: String) -> WitResult<i64> {
        let conn = self.conn(&this)?;
        Ok(conn.incr(&key).await.map_err(Into::into))
    }

    async fn del(&mut self, this: Resource<Connection>, keys: Vec<String>) -> WitResult<u32> {
        let conn = self.conn(&this)?;
        Ok(conn.del(keys).await.map_err(Into::into))
    }

    async fn sadd(
        &mut self,
        this: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> WitResult<u32> {
        let conn = self.conn(&this)?;
        Ok(conn.sadd(&key, values).await.map_err(Into::into))
    }

    async fn smembers(
        &mut self,
        this: Resource<Connection>,
        key: String,
    ) -> WitResult<Vec<String>> {
        let conn = self.conn(&this)?;
        Ok(conn.smembers(&key).await.map_err(Into::into))
    }

    async fn srem(
        &mut self,
        this: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> WitResult<u32> {
        let conn = self.conn(&this)?;
        Ok(conn.srem(&key, values).await.map_err(Into::into))
    }

    async fn execute(
        &mut self,
        this: Resource<Connection>,
        command: String,
        arguments: Vec<wit::RedisParameter>,
    ) -> WitResult<Vec<wit::RedisResult>> {
        let conn = self.conn(&this)?;
        let args = arguments.into_iter().map(param).collect();
        Ok(conn
            .execute(&command, args)
            .await
            .map(|values| values.into_iter().map(result).collect())
            .map_err(Into::into))
    }

    async fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
