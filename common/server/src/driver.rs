//! Which monoio I/O driver a worker runs on.

/// FusionDriver picks io_uring where the kernel allows it and epoll ("legacy") otherwise, or
/// when `MONOIO_FORCE_LEGACY_DRIVER=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Legacy,
}

impl Driver {
    /// The label value of the `*_driver_info` metrics and of the start-up log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Legacy => "legacy",
        }
    }
}
