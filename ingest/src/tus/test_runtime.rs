//! The monoio runtime the tus modules' unit tests run their futures on.

/// Run `f` to completion on a fresh monoio runtime with timers.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime")
        .block_on(f)
}
