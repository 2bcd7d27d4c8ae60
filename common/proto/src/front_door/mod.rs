//! The edge's front door to a pool of ingest nodes, sans-IO: which requests go to the pool and
//! to which node ([`route`]), and how a request and a response head are rewritten on the way
//! through ([`headers`]). The edge moves the bytes (`edge/src/front_door/`).

pub mod headers;
pub mod route;
