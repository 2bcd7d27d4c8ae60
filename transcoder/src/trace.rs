//! The running job's trace context, for the code it runs: the worker sets it (the job span's
//! `traceparent`) for the job's task; the live and VOD pipelines read it to put it beside their
//! `start` events (`EventPublisher::with_traceparent`).

use std::future::Future;

tokio::task_local! {
    static JOB_TRACEPARENT: String;
}

/// Run `f` with `traceparent` as the job's trace context.
pub async fn scope<F: Future>(traceparent: String, f: F) -> F::Output {
    JOB_TRACEPARENT.scope(traceparent, f).await
}

/// The current job's `traceparent` (`None` outside a job).
pub fn current() -> Option<String> {
    JOB_TRACEPARENT.try_with(String::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_inside_the_scope_only() {
        assert_eq!(current(), None);
        let inside = scope("00-a-b-01".into(), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("00-a-b-01"));
        assert_eq!(current(), None);
    }
}
