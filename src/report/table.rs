//! Fixed-width text tables, for the CLI's `--format table`.

/// Renders a header and rows as left-aligned columns two spaces apart, one line each.
pub(crate) fn render(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut all: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    all.extend(rows);
    let mut widths = vec![0usize; header.len()];
    for row in &all {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &all {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "long cell".to_owned()],
            vec!["wider".to_owned(), "b".to_owned()],
        ];
        assert_eq!(
            render(&["H1", "H2"], rows),
            "H1     H2\na      long cell\nwider  b\n"
        );
    }
}
