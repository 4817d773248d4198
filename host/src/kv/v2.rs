//! `fermyon:spin/key-value@2.0.0`: synchronous in WIT, async on the host. Only adapts types:
//! the logic is [`Store`]'s.

use wasmtime::component::{Linker, Resource};

use super::{HasKv, KvCtxView, KvError, Store};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/fermyon-spin@2.0.0",
        inline: "
            package redwasm:kv-v2;
            world kv-v2 { import fermyon:spin/key-value@2.0.0; }
        ",
        world: "redwasm:kv-v2/kv-v2",
        // `trappable` only so a dangling resource handle (a host bug) traps; every store
        // failure is a guest-visible `error`.
        imports: { default: async | trappable },
        with: { "fermyon:spin/key-value.store": crate::kv::Store },
    });
}

use bindings::fermyon::spin::key_value as wit;

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

impl KvCtxView<'_> {
    /// The store behind a handle; cloned so no borrow of the table outlives the lookup.
    fn store(&self, handle: &Resource<Store>) -> wasmtime::Result<Store> {
        Ok(self.table.get(handle)?.clone())
    }
}

impl wit::Host for KvCtxView<'_> {}

impl wit::HostStore for KvCtxView<'_> {
    async fn open(&mut self, label: String) -> WitResult<Resource<Store>> {
        Ok(KvCtxView::open(self, &label)?.map_err(Into::into))
    }

    async fn get(&mut self, this: Resource<Store>, key: String) -> WitResult<Option<Vec<u8>>> {
        Ok(self.store(&this)?.get(&key).await.map_err(Into::into))
    }

    async fn set(&mut self, this: Resource<Store>, key: String, value: Vec<u8>) -> WitResult<()> {
        Ok(self
            .store(&this)?
            .set(&key, value)
            .await
            .map_err(Into::into))
    }

    async fn delete(&mut self, this: Resource<Store>, key: String) -> WitResult<()> {
        Ok(self.store(&this)?.delete(&key).await.map_err(Into::into))
    }

    async fn exists(&mut self, this: Resource<Store>, key: String) -> WitResult<bool> {
        Ok(self.store(&this)?.exists(&key).await.map_err(Into::into))
    }

    async fn get_keys(&mut self, this: Resource<Store>) -> WitResult<Vec<String>> {
        Ok(self.store(&this)?.get_keys().await.map_err(Into::into))
    }

    async fn drop(&mut self, this: Resource<Store>) -> wasmtime::Result<()> {
        self.close(this)
    }
}
