//! `spin:key-value/key-value@3.0.0`: async in WIT (WASIp3 components). Every function borrows
//! the store only to clone the [`Store`] out of the table, and awaits Redis without holding
//! it. `get-keys` answers with a stream of the keys and a future of the outcome.

use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

use super::{HasKv, KvCtxView, KvError, Store};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/spin-key-value@3.0.0",
        inline: "
            package redwasm:kv-v3;
            world kv-v3 { import spin:key-value/key-value@3.0.0; }
        ",
        world: "redwasm:kv-v3/kv-v3",
        imports: { default: trappable },
        with: { "spin:key-value/key-value.store": crate::kv::Store },
    });
}

use bindings::spin::key_value::key_value as wit;

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> KvCtxView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasKv>(linker, f)
}

impl From<KvError> for wit::Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::StoreTableFull => wit::Error::StoreTableFull,
            KvError::NoSuchStore => wit::Error::NoSuchStore,
            KvError::AccessDenied => wit::Error::AccessDenied,
            KvError::Other(msg) => wit::Error::Other(msg),
        }
    }
}

type WitResult<T> = wasmtime::Result<Result<T, wit::Error>>;

/// Clones the store out of the table; the store borrow ends before any `.await`.
fn store<T>(acc: &Accessor<T, HasKv>, handle: &Resource<Store>) -> wasmtime::Result<Store> {
    acc.with(|mut access| Ok(access.get().table.get(handle)?.clone()))
}

impl wit::Host for KvCtxView<'_> {}

impl wit::HostStore for KvCtxView<'_> {
    fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
        self.close(this)
    }
}

impl<T: Send> wit::HostStoreWithStore<T> for HasKv {
    async fn open(acc: &Accessor<T, Self>, label: String) -> WitResult<Resource<Store>> {
        acc.with(|mut access| Ok(access.get().open(&label)?.map_err(Into::into)))
    }

    async fn get(
        acc: &Accessor<T, Self>,
        this: Resource<Store>,
        key: String,
    ) -> WitResult<Option<Vec<u8>>> {
        Ok(store(acc, &this)?.get(&key).await.map_err(Into::into))
    }

    async fn set(
        acc: &Accessor<T, Self>,
        this: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> WitResult<()> {
        Ok(store(acc, &this)?
            .set(&key, value)
            .await
            .map_err(Into::into))
    }

    async fn delete(acc: &Accessor<T, Self>, this: Resource<Store>, key: String) -> WitResult<()> {
        Ok(store(acc, &this)?.delete(&key).await.map_err(Into::into))
    }

    async fn exists(
        acc: &Accessor<T, Self>,
        this: Resource<Store>,
        key: String,
    ) -> WitResult<bool> {
        Ok(store(acc, &this)?.exists(&key).await.map_err(Into::into))
    }

    async fn get_keys(
        acc: &Accessor<T, Self>,
        this: Resource<Store>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), wit::Error>>)> {
        let (keys, outcome) = match store(acc, &this)?.get_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(wit::Error::from(e))),
        };
        acc.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok((keys, outcome))
        })
    }
}
