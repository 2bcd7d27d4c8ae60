//! The one shape of every service's health endpoints (edge, ingest, transcoder), so a load
//! balancer, an orchestrator or an operator reads them the same way everywhere:
//!
//! - `GET /healthz`: alive (the process answers), never looks at a dependency: `200 ok`.
//! - `GET /readyz`: whether this instance should get work now: every dependency it needs
//!   answered (Redis, the object store, ...), its workers run, and it is not draining. 200 when
//!   ready, 503 otherwise, with the same JSON body in both cases:
//!
//! ```json
//! {"service":"edge","status":"ready","checks":{"origin":"ok","redis":"ok"}}
//! {"service":"ingest","status":"unavailable","checks":{"redis":"connection refused","store":"ok"}}
//! {"service":"transcoder","status":"draining","checks":{"redis":"ok","store":"ok","workers":"ok"}}
//! ```
//!
//! `status` is `ready`, `unavailable` (a check failed: its value says why) or `draining` (the
//! process was asked to stop: no new work, even if every check passes). A check that does not
//! apply to an instance (an edge without Redis) is left out rather than reported as passing.

use serde_json::{Map, Value};

/// The body of `/healthz` on every service.
pub const ALIVE_BODY: &str = "ok\n";

/// What a passing check reports.
pub const CHECK_OK: &str = "ok";

/// One dependency or internal check: `Ok(())` or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub result: Result<(), String>,
}

/// A service's `/readyz` answer, built from its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub service: &'static str,
    pub draining: bool,
    pub checks: Vec<Check>,
}

impl Readiness {
    /// No checks yet, not draining.
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            draining: false,
            checks: Vec::new(),
        }
    }

    /// Add the outcome of check `name`.
    pub fn check(mut self, name: &'static str, result: Result<(), String>) -> Self {
        self.checks.push(Check { name, result });
        self
    }

    /// Mark the instance as draining (it answers 503 whatever its checks say).
    pub fn draining(mut self, draining: bool) -> Self {
        self.draining = draining;
        self
    }

    /// Every check passed and the instance is not draining.
    pub fn is_ready(&self) -> bool {
        !self.draining && self.checks.iter().all(|c| c.result.is_ok())
    }

    /// `ready`, `draining` or `unavailable`.
    pub fn verdict(&self) -> &'static str {
        if self.draining {
            "draining"
        } else if self.is_ready() {
            "ready"
        } else {
            "unavailable"
        }
    }

    /// 200 when ready, else 503.
    pub fn http_status(&self) -> u16 {
        if self.is_ready() {
            200
        } else {
            503
        }
    }

    /// The failed checks as `name: why`, joined (for a log line); empty when none failed.
    pub fn problems(&self) -> String {
        self.checks
            .iter()
            .filter_map(|c| c.result.as_ref().err().map(|e| format!("{}: {e}", c.name)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The JSON body of the module doc.
    pub fn to_json(&self) -> Value {
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| {
                let v = match &c.result {
                    Ok(()) => CHECK_OK.to_string(),
                    Err(e) => e.clone(),
                };
                (c.name.to_string(), Value::String(v))
            })
            .collect();
        serde_json::json!({
            "service": self.service,
            "status": self.verdict(),
            "checks": checks,
        })
    }

    /// [`Readiness::to_json`] as bytes.
    pub fn to_body(&self) -> Vec<u8> {
        // A `Value` of strings always serializes.
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }
}

/// The check that `expected` workers run: `alive` of them still do.
pub fn workers(alive: usize, expected: usize) -> Result<(), String> {
    if alive >= expected {
        Ok(())
    } else {
        Err(format!("{alive} of {expected} workers running"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_unavailable_and_draining() {
        let ok = Readiness::new("edge")
            .check("origin", Ok(()))
            .check("redis", Ok(()));
        assert!(ok.is_ready());
        assert_eq!(ok.http_status(), 200);
        assert_eq!(
            ok.to_json(),
            serde_json::json!({"service":"edge","status":"ready",
                "checks":{"origin":"ok","redis":"ok"}})
        );
        assert_eq!(ok.problems(), "");

        let down = Readiness::new("ingest")
            .check("redis", Err("connection refused".into()))
            .check("store", Ok(()));
        assert_eq!(down.http_status(), 503);
        assert_eq!(down.verdict(), "unavailable");
        assert_eq!(down.to_json()["checks"]["redis"], "connection refused");
        assert_eq!(down.problems(), "redis: connection refused");

        let draining = Readiness::new("transcoder")
            .check("redis", Ok(()))
            .draining(true);
        assert_eq!(draining.http_status(), 503);
        assert_eq!(draining.to_json()["status"], "draining");
        // Draining wins over a failed check: the instance is going away either way.
        let both = down.draining(true);
        assert_eq!(both.verdict(), "draining");
    }

    #[test]
    fn body_is_json() {
        let r = Readiness::new("edge").check("origin", Err("timed out \"x\"".into()));
        let v: Value = serde_json::from_slice(&r.to_body()).expect("json");
        assert_eq!(v["checks"]["origin"], "timed out \"x\"");
    }

    #[test]
    fn workers_check() {
        assert!(workers(3, 3).is_ok());
        assert!(workers(0, 0).is_ok());
        assert_eq!(workers(1, 2).unwrap_err(), "1 of 2 workers running");
    }
}
