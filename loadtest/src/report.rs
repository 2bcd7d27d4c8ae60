//! Terminal output shared by the swarms: the progress line while a run goes on, and the
//! "errors by status" line of the final table.

use std::collections::BTreeMap;
use std::io::Write;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Redraw `line(elapsed_secs)` on stderr four times a second until every thread in `handles`
/// has finished, then end the line.
pub fn progress_until_done<T>(
    handles: &[JoinHandle<T>],
    start: Instant,
    line: impl Fn(f64) -> String,
) {
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        eprint!("\r{}   ", line(start.elapsed().as_secs_f64().max(1e-3)));
        let _ = std::io::stderr().flush();
    }
    eprintln!();
}

/// `errors: none` or `errors: 404: 3, transport: 1` (status `0` = transport error).
pub fn errors_line(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "errors: none\n".to_string();
    }
    let list: Vec<String> = errors
        .iter()
        .map(|(st, n)| format!("{}: {n}", if st == "0" { "transport" } else { st }))
        .collect();
    format!("errors: {}\n", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_line_names_transport_errors() {
        assert_eq!(errors_line(&BTreeMap::new()), "errors: none\n");
        let errors = BTreeMap::from([("0".to_string(), 2), ("404".to_string(), 1)]);
        assert_eq!(errors_line(&errors), "errors: transport: 2, 404: 1\n");
    }
}
