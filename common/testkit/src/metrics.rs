//! Reading one sample out of a Prometheus text exposition (`/metrics` of every service).

use std::str::FromStr;

/// Value of the sample `series` (a metric name, with its labels when it has any, e.g.
/// `ringcast_edge_driver_info{driver="legacy"}`) in `text`; `None` when it is missing or does
/// not parse as `T`. Comment lines are skipped, so a `# HELP series` line never matches.
pub fn sample<T: FromStr>(text: &str, series: &str) -> Option<T> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_exact_series() {
        let text = "# HELP a_total x\na_total 3\na_total_bytes 9\nb{k=\"v\"} 1.5\n";
        assert_eq!(sample::<u64>(text, "a_total"), Some(3));
        assert_eq!(sample::<u64>(text, "a_total_bytes"), Some(9));
        assert_eq!(sample::<f64>(text, "b{k=\"v\"}"), Some(1.5));
        assert_eq!(sample::<u64>(text, "b{k=\"v\"}"), None, "not an integer");
        assert_eq!(sample::<u64>(text, "a"), None);
    }
}
