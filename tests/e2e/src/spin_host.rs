//! Host implementations of the Spin interfaces the components import:
//! `spin:key-value/key-value@3.0.0`, `spin:variables/variables@3.0.0`,
//! `fermyon:spin/variables@2.0.0` (Spin 3.x, the p2 build), and
//! `wasi:keyvalue@0.2.0-draft2` store, atomics and batch (both builds).

use crate::host::HostState;
use crate::kv::{CasState, KvError, KvStore, Swap};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use wasmtime::component::{Accessor, HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "e2e:host/host",
        with: {
            "spin:key-value/key-value.store": super::SpinStore,
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::CasHandle,
        },
    });
}

use bindings::fermyon::spin::variables as spin2_vars;
use bindings::spin::key_value::key_value as spin_kv;
use bindings::spin::variables::variables as spin_vars;
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// An open `spin:key-value` store.
pub struct SpinStore {
    label: String,
}

/// An open `wasi:keyvalue` bucket.
pub struct Bucket {
    label: String,
}

/// A compare-and-swap handle: the key, and what the backend keeps between
/// `current` and `swap` (the value read, or Redis's watching connection).
pub struct CasHandle {
    label: String,
    key: String,
    state: CasState,
}

/// What one component instance may use.
pub struct SpinCtx {
    pub kv: Arc<KvStore>,
    pub allowed_stores: Arc<HashSet<String>>,
    pub variables: Arc<HashMap<String, String>>,
}

/// Adds the Spin interfaces to a linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    bindings::Host_::add_to_linker::<HostState, HasSelf<HostState>>(linker, |t| t)
}

fn kv_err(e: KvError) -> String {
    e.to_string()
}

impl spin_kv::Host for HostState {}

impl spin_kv::HostStore for HostState {
    fn drop(&mut self, rep: Resource<SpinStore>) -> wasmtime::Result<()> {
        self.spin().1.delete(rep)?;
        Ok(())
    }
}

impl spin_kv::HostStoreWithStore for HasSelf<HostState> {
    async fn open<U>(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> Result<Resource<SpinStore>, spin_kv::Error> {
        accessor.with(|mut access| {
            let (ctx, table) = access.get().spin();
            if !ctx.allowed_stores.contains(&label) {
                return Err(spin_kv::Error::AccessDenied);
            }
            table
                .push(SpinStore { label })
                .map_err(|_| spin_kv::Error::StoreTableFull)
        })
    }

    async fn get<U>(
        accessor: &Accessor<U, Self>,
        self_: Resource<SpinStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, spin_kv::Error> {
        with_spin_store(accessor, &self_, |kv, label| kv.get(label, &key))
    }

    async fn set<U>(
        accessor: &Accessor<U, Self>,
        self_: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), spin_kv::Error> {
        with_spin_store(accessor, &self_, |kv, label| kv.set(label, &key, &value))
    }

    async fn delete<U>(
        accessor: &Accessor<U, Self>,
        self_: Resource<SpinStore>,
        key: String,
    ) -> Result<(), spin_kv::Error> {
        with_spin_store(accessor, &self_, |kv, label| kv.delete(label, &key))
    }

    async fn exists<U>(
        accessor: &Accessor<U, Self>,
        self_: Resource<SpinStore>,
        key: String,
    ) -> Result<bool, spin_kv::Error> {
        with_spin_store(accessor, &self_, |kv, label| kv.exists(label, &key))
    }
}

fn with_spin_store<U, R>(
    accessor: &Accessor<U, HasSelf<HostState>>,
    store: &Resource<SpinStore>,
    f: impl FnOnce(&KvStore, &str) -> Result<R, KvError>,
) -> Result<R, spin_kv::Error> {
    let (kv, label) = accessor.with(|mut access| {
        let (ctx, table) = access.get().spin();
        let label = table
            .get(store)
            .map(|s| s.label.clone())
            .map_err(|_| spin_kv::Error::NoSuchStore)?;
        Ok::<_, spin_kv::Error>((ctx.kv.clone(), label))
    })?;
    f(&kv, &label).map_err(|e| spin_kv::Error::Other(kv_err(e)))
}

impl spin_vars::Host for HostState {}

impl spin_vars::HostWithStore for HasSelf<HostState> {
    async fn get<U>(
        accessor: &Accessor<U, Self>,
        name: String,
    ) -> Result<String, spin_vars::Error> {
        if let Err(e) = crate::manifest::validate_variable_name(&name) {
            return Err(spin_vars::Error::InvalidName(e.to_string()));
        }
        accessor.with(|mut access| {
            let (ctx, _) = access.get().spin();
            ctx.variables
                .get(&name)
                .cloned()
                .ok_or_else(|| spin_vars::Error::Undefined(format!("no variable for {name:?}")))
        })
    }
}

impl spin2_vars::Host for HostState {
    /// Spin 3.x's form (the p2 build): the same values, synchronously.
    fn get(&mut self, name: String) -> Result<String, spin2_vars::Error> {
        if let Err(e) = crate::manifest::validate_variable_name(&name) {
            return Err(spin2_vars::Error::InvalidName(e.to_string()));
        }
        self.spin()
            .0
            .variables
            .get(&name)
            .cloned()
            .ok_or_else(|| spin2_vars::Error::Undefined(format!("no variable for {name:?}")))
    }
}

impl wasi_store::Host for HostState {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, wasi_store::Error> {
        let (ctx, table) = self.spin();
        if !ctx.allowed_stores.contains(&identifier) {
            return Err(wasi_store::Error::AccessDenied);
        }
        table
            .push(Bucket { label: identifier })
            .map_err(|e| wasi_store::Error::Other(e.to_string()))
    }
}

/// The database and label behind a bucket handle.
fn bucket(
    t: &mut HostState,
    b: &Resource<Bucket>,
) -> Result<(Arc<KvStore>, String), wasi_store::Error> {
    let (ctx, table) = t.spin();
    let label = table
        .get(b)
        .map_err(|_| wasi_store::Error::NoSuchStore)?
        .label
        .clone();
    Ok((ctx.kv.clone(), label))
}

fn wasi_err(e: KvError) -> wasi_store::Error {
    wasi_store::Error::Other(kv_err(e))
}

impl wasi_store::HostBucket for HostState {
    fn get(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        let (kv, label) = bucket(self, &self_)?;
        kv.get(&label, &key).map_err(wasi_err)
    }

    fn set(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        let (kv, label) = bucket(self, &self_)?;
        kv.set(&label, &key, &value).map_err(wasi_err)
    }

    fn delete(&mut self, self_: Resource<Bucket>, key: String) -> Result<(), wasi_store::Error> {
        let (kv, label) = bucket(self, &self_)?;
        kv.delete(&label, &key).map_err(wasi_err)
    }

    fn exists(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, wasi_store::Error> {
        let (kv, label) = bucket(self, &self_)?;
        kv.exists(&label, &key).map_err(wasi_err)
    }

    /// Like Spin 4.0.2: no cursor; the first call returns every key.
    fn list_keys(
        &mut self,
        self_: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        if cursor.is_some() {
            return Err(wasi_store::Error::Other(
                "list_keys: cursor not supported".into(),
            ));
        }
        let (kv, label) = bucket(self, &self_)?;
        let keys = kv.list_keys(&label).map_err(wasi_err)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }

    fn drop(&mut self, rep: Resource<Bucket>) -> wasmtime::Result<()> {
        self.spin().1.delete(rep)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        let (kv, label) = bucket(self, &b)?;
        kv.increment(&label, &key, delta).map_err(wasi_err)
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let store_err = |e: wasi_store::Error| atomics::CasError::StoreError(e);
        let handle = self
            .spin()
            .1
            .delete(cas)
            .map_err(|e| store_err(wasi_store::Error::Other(e.to_string())))?;
        let kv = self.spin().0.kv.clone();
        match kv
            .cas_swap(&handle.label, &handle.key, handle.state, &value)
            .map_err(|e| store_err(wasi_err(e)))?
        {
            Swap::Swapped => Ok(()),
            Swap::Failed => {
                // As Spin does: hand back a fresh handle that has already read
                // the current value, so the guest can retry with it.
                let mut state = kv.cas_new().map_err(|e| store_err(wasi_err(e)))?;
                kv.cas_current(&handle.label, &handle.key, &mut state)
                    .map_err(|e| store_err(wasi_err(e)))?;
                let fresh = self
                    .spin()
                    .1
                    .push(CasHandle {
                        label: handle.label,
                        key: handle.key,
                        state,
                    })
                    .map_err(|e| store_err(wasi_store::Error::Other(e.to_string())))?;
                Err(atomics::CasError::CasFailed(fresh))
            }
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> Result<Resource<CasHandle>, wasi_store::Error> {
        let (kv, label) = bucket(self, &b)?;
        let state = kv.cas_new().map_err(wasi_err)?;
        self.spin()
            .1
            .push(CasHandle { label, key, state })
            .map_err(|e| wasi_store::Error::Other(e.to_string()))
    }

    fn current(
        &mut self,
        self_: Resource<CasHandle>,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        let (ctx, table) = self.spin();
        let kv = ctx.kv.clone();
        let handle = table
            .get_mut(&self_)
            .map_err(|e| wasi_store::Error::Other(e.to_string()))?;
        kv.cas_current(&handle.label, &handle.key, &mut handle.state)
            .map_err(wasi_err)
    }

    fn drop(&mut self, rep: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.spin().1.delete(rep)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, wasi_store::Error> {
        let (kv, label) = bucket(self, &b)?;
        kv.get_many(&label, &keys).map_err(wasi_err)
    }

    fn set_many(
        &mut self,
        b: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), wasi_store::Error> {
        let (kv, label) = bucket(self, &b)?;
        kv.set_many(&label, &key_values).map_err(wasi_err)
    }

    fn delete_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), wasi_store::Error> {
        let (kv, label) = bucket(self, &b)?;
        kv.delete_many(&label, &keys).map_err(wasi_err)
    }
}
