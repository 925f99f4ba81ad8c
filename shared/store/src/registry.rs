//! Registries in the store: institutions, trainers, courseware and the
//! planned-textbook catalogue, each entry under its own key so that validation
//! reads exactly the entries an application names. Every change is audited.

use crate::audit::{self, Actor, Change};
use crate::keys;
use crate::kv::KeyValue;
use crate::pii::sha256_hex;
use crate::records::{StoreError, UpdateError, get_json, put_json, update_json};
use chrono::{DateTime, Utc};
use policy::registry::{CatalogueTextbook, Courseware, Institution, Trainer, normalize_isbn};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The kinds of registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Training institutions, by credit code.
    Institution,
    /// Trainers, by platform registration number.
    Trainer,
    /// Courseware, by platform id.
    Courseware,
    /// Catalogue textbooks, by ISBN.
    Textbook,
}

impl Kind {
    /// The name used in keys and routes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Institution => "institution",
            Kind::Trainer => "trainer",
            Kind::Courseware => "courseware",
            Kind::Textbook => "textbook",
        }
    }
}

/// A registry entry type.
pub trait Entry: Serialize + DeserializeOwned + Clone {
    /// Its kind.
    const KIND: Kind;
    /// Its id in the registry.
    fn id(&self) -> String;
}

impl Entry for Institution {
    const KIND: Kind = Kind::Institution;
    fn id(&self) -> String {
        self.credit_code.as_str().to_string()
    }
}
impl Entry for Trainer {
    const KIND: Kind = Kind::Trainer;
    fn id(&self) -> String {
        self.registration_no.clone()
    }
}
impl Entry for Courseware {
    const KIND: Kind = Kind::Courseware;
    fn id(&self) -> String {
        self.id.clone()
    }
}
impl Entry for CatalogueTextbook {
    const KIND: Kind = Kind::Textbook;
    fn id(&self) -> String {
        normalize_isbn(&self.isbn)
    }
}

/// Reads an entry.
pub fn get<E: Entry>(kv: &impl KeyValue, id: &str) -> Result<Option<E>, StoreError> {
    let id = if E::KIND == Kind::Textbook {
        normalize_isbn(id)
    } else {
        id.to_string()
    };
    get_json(kv, &keys::registry(E::KIND.name(), &id), E::KIND.name())
}

/// Stores an entry (create or replace) with no rule on the change; returns
/// whether it existed before. See [`put_checked`].
pub fn put<E: Entry>(
    kv: &impl KeyValue,
    entry: &E,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    put_checked::<E, std::convert::Infallible>(kv, entry, actor, now, |_, _| Ok(())).map_err(|e| {
        match e {
            UpdateError::Store(s) => s,
            UpdateError::Refused(never) => match never {},
        }
    })
}

/// Stores an entry (create or replace) if `check(before, after)` allows the
/// change; returns whether it existed before.
///
/// The write is a compare-and-swap on the entry: `check` sees the entry as it
/// is when the swap succeeds, so two writers never overwrite each other
/// unseen. The change is audited with digests of the entry before and after.
/// A refused change writes nothing.
pub fn put_checked<E: Entry, R>(
    kv: &impl KeyValue,
    entry: &E,
    actor: Actor,
    now: DateTime<Utc>,
    check: impl Fn(Option<&E>, &E) -> Result<(), R>,
) -> Result<bool, UpdateError<R>> {
    let key = keys::registry(E::KIND.name(), &entry.id());
    let mut before: Option<E> = None;
    update_json::<E, R>(kv, &key, E::KIND.name(), |current| {
        check(current.as_ref(), entry)?;
        before = current;
        Ok(Some(entry.clone()))
    })?;
    if E::KIND == Kind::Textbook {
        // Books named without an ISBN are matched by exact title.
        let value = serde_json::to_value(entry).expect("serialises");
        if let Some(title) = value.get("title").and_then(|t| t.as_str()) {
            put_json(
                kv,
                &keys::registry("textbook-title", &sha256_hex(title.trim())),
                entry,
            )?;
        }
    }
    audit::record(
        kv,
        Change {
            actor,
            action: format!("registry.{}.put", E::KIND.name()),
            entity: format!("{}:{}", E::KIND.name(), entry.id()),
            before: before.as_ref().map(audit::digest_of),
            after: Some(audit::digest_of(entry)),
            note: None,
        },
        now,
    )?;
    Ok(before.is_some())
}
