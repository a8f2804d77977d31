//! `pvmctl stats`: the daemon's Prometheus text file, readable.

/// The samples of a Prometheus text exposition, without comments and blank
/// lines, as `name{labels}  value` with the values aligned.
pub fn format_stats(text: &str) -> String {
    let samples: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(split_sample)
        .collect();
    let width = samples.iter().map(|(series, _)| series.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (series, value) in samples {
        let pad = width - series.chars().count();
        out.push_str(series);
        out.push_str(&" ".repeat(pad + 2));
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// Splits `name{labels} value [timestamp]` into the series and the value.
/// Label values are quoted strings and may hold blanks, braces and `\"`.
fn split_sample(line: &str) -> (&str, &str) {
    let series_end = match line.find(['{', ' ', '\t']) {
        Some(open) if line[open..].starts_with('{') => end_of_labels(line, open).unwrap_or(line.len()),
        Some(blank) => blank,
        None => line.len(),
    };
    let (series, rest) = line.split_at(series_end);
    let value = rest.split_whitespace().next().unwrap_or("");
    (series, value)
}

/// The index just after the `}` that closes the labels opened at `open`.
fn end_of_labels(line: &str, open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(open + i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_comments_and_aligns_values() {
        let text = "\
# HELP pvm_events_total Events by kind.
# TYPE pvm_events_total counter
pvm_events_total{kind=\"node_added\"} 12
pvm_events_total{kind=\"param\"} 3

pvm_publishes_total 15
pvm_latency_seconds{quantile=\"0.99\"} 0.000211 1700000000000
";
        assert_eq!(
            format_stats(text),
            "\
pvm_events_total{kind=\"node_added\"}   12
pvm_events_total{kind=\"param\"}        3
pvm_publishes_total                   15
pvm_latency_seconds{quantile=\"0.99\"}  0.000211
"
        );
    }

    #[test]
    fn labels_may_hold_blanks_braces_and_quotes() {
        assert_eq!(split_sample(r#"errors_total{what="a } b \" c"} 7"#), (r#"errors_total{what="a } b \" c"}"#, "7"));
    }

    #[test]
    fn empty_or_comment_only_input() {
        assert_eq!(format_stats(""), "");
        assert_eq!(format_stats("# only\n# comments\n"), "");
    }
}
