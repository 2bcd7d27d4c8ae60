//! Every serving binary (ingest, edge, transcoder) raises its open-file limit to the hard limit
//! at start and logs it: started here with a soft limit of 512 (this test process lowers its
//! own, which the services inherit), each must run with soft = hard.

use ringcast_testkit::{EdgeOptions, IngestOptions, Service, Stack, TranscoderOptions};

/// (soft, hard) "Max open files" of a running process.
fn nofile_of(service: &Service) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", service.process.pid()))
        .expect("read /proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn every_server_raises_its_open_file_limit_to_the_hard_limit() {
    const LOW: u64 = 512;
    // SAFETY: get/setrlimit on structs we own; lowering the soft limit needs no privilege.
    let hard = unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        if l.rlim_max <= LOW as libc::rlim_t {
            eprintln!(
                "SKIPPED: the hard open-file limit is already {}",
                l.rlim_max
            );
            return;
        }
        l.rlim_cur = LOW as libc::rlim_t;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
        l.rlim_max as u64
    };
    let stack = Stack::builder()
        .ingest(IngestOptions::new())
        .edge(EdgeOptions::new())
        .transcoder(TranscoderOptions::new())
        .start();
    for service in [stack.ingest(), stack.edge(), stack.transcoder()] {
        let (soft, max) = nofile_of(service);
        assert_eq!(max, hard, "{}", service.name);
        let expected = hard.min(1 << 20);
        assert_eq!(
            soft, expected,
            "{} kept a soft limit of {soft}",
            service.name
        );
        let log = service.process.log_text();
        assert!(
            log.contains("open-file limit (RLIMIT_NOFILE) raised") && log.contains("before=512"),
            "{} did not log its limit:\n{log}",
            service.name
        );
    }
}
