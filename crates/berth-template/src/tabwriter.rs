//! Column alignment as Docker's `tabwriter` fork does it (Go's elastic tabstops, cell width
//! in terminal columns): cells end at `\t`, consecutive lines with a cell in a column form a
//! block padded to its widest cell plus `padding`, at least `minwidth`. The last cell of a
//! line is not part of any column. Iterative, so no input can exhaust the stack.

use unicode_width::UnicodeWidthStr;

/// Docker's settings: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
pub(crate) const MIN_WIDTH: usize = 10;
pub(crate) const PADDING: usize = 3;

struct Cell<'a> {
    text: &'a str,
    width: usize,
}

/// Aligns `text` (lines of tab-terminated cells) with spaces.
pub(crate) fn align(text: &str, min_width: usize, padding: usize) -> String {
    let mut lines: Vec<Vec<Cell>> = text
        .split('\n')
        .map(|l| {
            l.split('\t')
                .map(|c| Cell {
                    text: c,
                    width: c.width(),
                })
                .collect()
        })
        .collect();
    // Text ending in a newline leaves an empty last line with no cells at all.
    if text.ends_with('\n') || text.is_empty() {
        if let Some(last) = lines.last_mut() {
            last.clear();
        }
    }
    let mut w = Writer {
        lines: &lines,
        widths: Vec::new(),
        out: String::with_capacity(text.len() * 2),
    };
    w.format(min_width, padding);
    w.out
}

struct Writer<'l, 'a> {
    lines: &'l [Vec<Cell<'a>>],
    widths: Vec<usize>,
    out: String,
}

/// One level of Go's recursive `format`: lines `line0..line1`, scanning from `this`.
struct Frame {
    line0: usize,
    this: usize,
    line1: usize,
}

impl Writer<'_, '_> {
    /// Has line `i` a cell in `column` (the last cell of a line does not count)?
    fn has_cell(&self, i: usize, column: usize) -> bool {
        column + 1 < self.lines[i].len()
    }

    fn format(&mut self, min_width: usize, padding: usize) {
        let mut stack = vec![Frame {
            line0: 0,
            this: 0,
            line1: self.lines.len(),
        }];
        while let Some(top) = stack.last() {
            let column = stack.len() - 1;
            let (line0, line1) = (top.line0, top.line1);
            let mut this = top.this;
            while this < line1 && !self.has_cell(this, column) {
                this += 1;
            }
            if this >= line1 {
                self.write_lines(line0, line1);
                stack.pop();
                if let Some(parent) = stack.last_mut() {
                    self.widths.pop();
                    parent.line0 = parent.this;
                }
                continue;
            }
            self.write_lines(line0, this);
            let start = this;
            let mut width = min_width;
            while this < line1 && self.has_cell(this, column) {
                width = width.max(self.lines[this][column].width + padding);
                this += 1;
            }
            let top = stack.last_mut().expect("frame just inspected");
            top.line0 = start;
            top.this = this;
            self.widths.push(width);
            stack.push(Frame {
                line0: start,
                this: start,
                line1: this,
            });
        }
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(c.text);
                if let Some(w) = self.widths.get(j) {
                    self.out.push_str(&" ".repeat(w.saturating_sub(c.width)));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{align, MIN_WIDTH, PADDING};

    fn docker(s: &str) -> String {
        align(s, MIN_WIDTH, PADDING)
    }

    #[test]
    fn columns_are_the_widest_cell_plus_padding_but_at_least_min_width() {
        assert_eq!(
            docker("A\tB\nlonger-cell-here\tx\n"),
            "A                  B\nlonger-cell-here   x\n"
        );
        assert_eq!(docker("a\tb\n"), "a         b\n");
    }

    #[test]
    fn a_line_without_the_column_ends_the_block() {
        assert_eq!(
            docker("aaaaaaaaaaaa\tx\nno tabs\nb\ty\n"),
            "aaaaaaaaaaaa   x\nno tabs\nb         y\n"
        );
    }

    #[test]
    fn trailing_cells_are_not_padded_and_empty_text_stays_empty() {
        assert_eq!(docker("x\t\n"), "x         \n");
        assert_eq!(docker(""), "");
        assert_eq!(docker("no newline"), "no newline");
    }
}
