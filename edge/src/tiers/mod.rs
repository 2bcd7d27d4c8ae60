//! Where objects are kept and how one is found: the memory cache in front, the disk tier behind
//! it for large immutable objects, and the lookup that walks both before asking the origin.
//!
//! - [`lookup`](mod@lookup): memory → disk → origin, with single-flight origin fetches and stale serving;
//! - [`memory`]: the in-memory cache (entries, load coalescing, TTLs);
//! - [`disk`] and [`disk_index`]: files under the cache directory and their LRU bookkeeping;
//! - [`policy`]: which tier an object goes to and how long it may be served stale;
//! - [`content`]: Content-Type and freshness of an object, from its key;
//! - [`page_cache`]: keeping `sendfile` (in `ringcast-server`) off the disk;
//! - [`mem_file`]: an object's bytes as a sealed in-memory file, for `sendfile` without a disk.

pub mod content;
pub mod disk;
pub mod disk_index;
pub mod lookup;
pub mod mem_file;
pub mod memory;
pub mod page_cache;
pub mod policy;

pub use lookup::{lookup, Found, TierSet, Tiering};
