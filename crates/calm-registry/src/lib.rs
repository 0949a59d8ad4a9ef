//! One cached, shared service per normalized base URL.
//!
//! # Overview
//!
//! A program that talks to an API from many places wants every one of those places to share one
//! connection pool, one rate budget and one retry budget. [`Registry`] holds one service per
//! normalized [`BaseUrl`]: the first [`get`](Registry::get) for a base URL runs the factory, every
//! later `get` — with the same or an equivalent spelling — returns a clone of that one service.
//!
//! - The factory runs **exactly once per key**, even when many threads ask for a new key at the
//!   same moment; callers asking for other keys are not blocked while it runs.
//! - A hit takes only a read lock and does not allocate: base URLs are looked up by reference,
//!   and a spelling that was seen before (`"https://API.example.com:443/v1"`; the first
//!   [`MAX_SPELLINGS_PER_KEY`] of each base URL are remembered, see [Memory](#memory)) is found
//!   without parsing it again.
//! - Cloning a `Registry` shares it.
//!
//! # Example
//!
//! ```
//! use calm_registry::Registry;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let built = Arc::new(AtomicUsize::new(0));
//! let counter = built.clone();
//! let registry = Registry::new(move |base| {
//!     counter.fetch_add(1, Ordering::SeqCst);
//!     format!("client for {base}")
//! });
//!
//! let a = registry.get("https://API.example.com:443/v1")?;
//! let b = registry.get("https://api.example.com/v1/")?;
//! assert_eq!(a, b);
//! assert_eq!(a, "client for https://api.example.com/v1/");
//! assert_eq!(built.load(Ordering::SeqCst), 1);
//! assert!(registry.get("ftp://api.example.com").is_err());
//! # Ok::<(), calm_client::InvalidBaseUrl>(())
//! ```
//!
//! # Memory
//!
//! Entries stay until [`remove`](Registry::remove)d. Each costs the service itself, one
//! [`BaseUrl`] (a shared string), one `Arc` cell and a hash-map slot — roughly 100 bytes plus the
//! URL. The first few distinct *spellings* of each base URL looked up by `&str` (at most
//! [`MAX_SPELLINGS_PER_KEY`], each up to [`MAX_SPELLING_LEN`] bytes) keep one small alias entry
//! each (the spelling's bytes plus an `Arc` clone), so that the next lookup of that spelling
//! does not parse or allocate. Further spellings are not remembered: a lookup with one of them
//! parses and normalizes the string, then finds the entry under a read lock. So the memory a
//! registry uses is bounded by its number of entries, however many spellings it is asked with.
//!
//! # Feature flags
//!
//! None.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

pub use calm_client::{BaseUrl, InvalidBaseUrl};

mod key;

pub use key::RegistryKey;

type Cell<S> = Arc<OnceLock<S>>;

/// The most spellings of one base URL a [`Registry`] remembers (see [Memory](crate#memory)).
pub const MAX_SPELLINGS_PER_KEY: usize = 8;

/// The longest spelling a [`Registry`] remembers, in bytes (see [Memory](crate#memory)).
pub const MAX_SPELLING_LEN: usize = 2048;
type Factory<S> = dyn Fn(&BaseUrl) -> S + Send + Sync;

/// One shared service per normalized base URL.
///
/// See the [crate docs](crate) for the guarantees and an example.
///
/// # Clone
///
/// Clones share the same entries and factory.
pub struct Registry<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    factory: Box<Factory<S>>,
    maps: RwLock<Maps<S>>,
}

struct Maps<S> {
    entries: HashMap<BaseUrl, Entry<S>>,
    // NOTE: spellings already seen, so a `&str` hit needs neither parsing nor allocation.
    // Bounded: at most `MAX_SPELLINGS_PER_KEY` per entry, counted in `Entry::spellings`.
    aliases: HashMap<Box<str>, (BaseUrl, Cell<S>)>,
}

struct Entry<S> {
    cell: Cell<S>,
    spellings: usize,
}

impl<S> Registry<S>
where
    S: Clone,
{
    /// Creates an empty registry that builds a service with `factory` the first time a base URL
    /// is asked for.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// assert!(registry.is_empty());
    /// ```
    pub fn new<F>(factory: F) -> Self
    where
        F: Fn(&BaseUrl) -> S + Send + Sync + 'static,
    {
        Registry {
            inner: Arc::new(Inner {
                factory: Box::new(factory),
                maps: RwLock::new(Maps {
                    entries: HashMap::new(),
                    aliases: HashMap::new(),
                }),
            }),
        }
    }

    /// Returns the service for `base`, building it with the registry's factory on first use.
    ///
    /// `base` is a `&str`, a `String` or a [`BaseUrl`]; equivalent spellings share one entry.
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] if `base` is a string that is not a valid base URL.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// let service = registry.get("http://127.0.0.1:8080")?;
    /// assert_eq!(service, "http://127.0.0.1:8080/");
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn get<K>(&self, base: &K) -> Result<S, InvalidBaseUrl>
    where
        K: RegistryKey + ?Sized,
    {
        self.get_or_insert_with(base, |base| (self.inner.factory)(base))
    }

    /// Returns the service for `base`, building it with `make` (instead of the registry's
    /// factory) if there is none yet.
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] if `base` is a string that is not a valid base URL.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|_| "from the factory");
    /// let special = registry.get_or_insert_with("https://special.example", |_| "special")?;
    /// assert_eq!(special, "special");
    /// assert_eq!(registry.get("https://special.example/")?, "special");
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn get_or_insert_with<K, F>(&self, base: &K, make: F) -> Result<S, InvalidBaseUrl>
    where
        K: RegistryKey + ?Sized,
        F: FnOnce(&BaseUrl) -> S,
    {
        let (base, cell) = match self.find(base) {
            Found::Ready(service) => return Ok(service),
            Found::Pending(base, cell) => (base, cell),
            Found::Missing(spelling) => self.insert_cell(base, spelling)?,
        };
        // NOTE: built outside the map lock, so other keys are served meanwhile; `OnceLock`
        // makes concurrent askers for this key wait for the one build.
        Ok(cell.get_or_init(|| make(&base)).clone())
    }

    /// Removes the entry for `base` and returns its service, if there was one.
    ///
    /// Clones already handed out keep working; the next `get` builds a new service.
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] if `base` is a string that is not a valid base URL.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// registry.get("https://api.example.com")?;
    /// assert!(registry.remove("https://api.example.com/")?.is_some());
    /// assert!(registry.is_empty());
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn remove<K>(&self, base: &K) -> Result<Option<S>, InvalidBaseUrl>
    where
        K: RegistryKey + ?Sized,
    {
        let base = base.to_base_url()?;
        let mut maps = self.write();
        let removed = maps.entries.remove(&base);
        if let Some(entry) = &removed {
            if entry.spellings > 0 {
                maps.aliases
                    .retain(|_, (_, alias)| !Arc::ptr_eq(alias, &entry.cell));
            }
        }
        Ok(removed.and_then(|entry| entry.cell.get().cloned()))
    }

    /// The number of base URLs with an entry.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// registry.get("https://a.example")?;
    /// registry.get("https://A.example:443/")?;
    /// registry.get("https://b.example")?;
    /// assert_eq!(registry.len(), 2);
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether the registry has no entries.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// assert!(registry.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.read().entries.is_empty()
    }

    /// The normalized base URLs that have an entry, in no particular order.
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// registry.get("https://API.example.com/v1")?;
    /// let keys: Vec<String> = registry.keys().iter().map(|k| k.to_string()).collect();
    /// assert_eq!(keys, ["https://api.example.com/v1/"]);
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn keys(&self) -> Vec<BaseUrl> {
        self.read().entries.keys().cloned().collect()
    }

    /// How many spellings the registry remembers, over all its entries; at most
    /// [`MAX_SPELLINGS_PER_KEY`] times [`len`](Registry::len).
    ///
    /// ```
    /// let registry = calm_registry::Registry::new(|base| base.to_string());
    /// for port in ["", ":443", ":0443", ":00443"] {
    ///     registry.get(&format!("https://api.example.com{port}/v1"))?;
    /// }
    /// assert_eq!(registry.len(), 1);
    /// assert_eq!(registry.cached_spellings(), 4);
    /// # Ok::<(), calm_client::InvalidBaseUrl>(())
    /// ```
    pub fn cached_spellings(&self) -> usize {
        self.read().aliases.len()
    }

    fn find<K>(&self, key: &K) -> Found<S>
    where
        K: RegistryKey + ?Sized,
    {
        let maps = self.read();
        let hit = match key.as_base_url() {
            Some(base) => maps
                .entries
                .get_key_value(base)
                .map(|(base, entry)| (base, &entry.cell)),
            None => maps
                .aliases
                .get(key.spelling())
                .map(|(base, cell)| (base, cell)),
        };
        match hit {
            Some((base, cell)) => match cell.get() {
                Some(service) => Found::Ready(service.clone()),
                None => Found::Pending(base.clone(), cell.clone()),
            },
            None => Found::Missing(key.as_base_url().is_none()),
        }
    }

    fn insert_cell<K>(
        &self,
        key: &K,
        remember_spelling: bool,
    ) -> Result<(BaseUrl, Cell<S>), InvalidBaseUrl>
    where
        K: RegistryKey + ?Sized,
    {
        let base = key.to_base_url()?;
        let spelling = key.spelling();
        let remember = remember_spelling && spelling.len() <= MAX_SPELLING_LEN;
        {
            // NOTE: an entry that exists and may take no more spellings is served under the
            // read lock: a stream of ever new spellings costs parsing, never the write lock.
            let maps = self.read();
            if let Some(entry) = maps.entries.get(&base) {
                if !remember || entry.spellings >= MAX_SPELLINGS_PER_KEY {
                    return Ok((base, entry.cell.clone()));
                }
            }
        }
        let mut maps = self.write();
        let Maps { entries, aliases } = &mut *maps;
        let entry = entries.entry(base.clone()).or_insert_with(|| Entry {
            cell: Cell::default(),
            spellings: 0,
        });
        let cell = entry.cell.clone();
        if remember && entry.spellings < MAX_SPELLINGS_PER_KEY && !aliases.contains_key(spelling) {
            aliases.insert(spelling.into(), (base.clone(), cell.clone()));
            entry.spellings += 1;
        }
        Ok((base, cell))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps<S>> {
        // NOTE: a poisoned lock only means a factory panicked elsewhere; the maps stay consistent
        // because they are never left half-updated.
        self.inner.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps<S>> {
        self.inner.maps.write().unwrap_or_else(|e| e.into_inner())
    }
}

enum Found<S> {
    Ready(S),
    Pending(BaseUrl, Cell<S>),
    /// Not cached; `true` when the key is a raw spelling worth remembering.
    Missing(bool),
}

impl<S> Clone for Registry<S> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let maps = self.inner.maps.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Registry")
            .field("keys", &maps.entries.keys().collect::<Vec<_>>())
            .field("spellings", &maps.aliases.len())
            .finish_non_exhaustive()
    }
}
