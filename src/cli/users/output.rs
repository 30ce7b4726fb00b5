//! Output for people: aligned tables (colour only on a terminal, never with `NO_COLOR`), a
//! spinner while something slow runs, and confirmation questions.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Colours of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Plain => "",
            Tone::Good => "\x1b[32m",
            Tone::Warn => "\x1b[33m",
            Tone::Bad => "\x1b[31m",
            Tone::Dim => "\x1b[2m",
        }
    }
}

/// Whether standard output takes colour.
pub fn colour_on_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A table whose columns are as wide as their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<(String, Tone)>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Tone)>) {
        self.rows.push(cells);
    }

    pub fn plain_row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| (c, Tone::Plain)).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, colour: bool) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|(c, _)| c.chars().count())
                .chain([self.headers[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let last = self.headers.len().saturating_sub(1);
        let mut out = String::new();
        let line = |cells: Vec<(&str, Tone)>, out: &mut String| {
            let mut text = String::new();
            for (i, (cell, tone)) in cells.into_iter().enumerate() {
                let pad = if i == last {
                    0
                } else {
                    widths[i].saturating_sub(cell.chars().count())
                };
                if colour && tone != Tone::Plain {
                    text.push_str(&format!("{}{cell}\x1b[0m", tone.code()));
                } else {
                    text.push_str(cell);
                }
                if i != last {
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        let header_tone = if colour { Tone::Dim } else { Tone::Plain };
        line(
            self.headers.iter().map(|h| (*h, header_tone)).collect(),
            &mut out,
        );
        for row in &self.rows {
            line(
                row.iter().map(|(c, t)| (c.as_str(), *t)).collect(),
                &mut out,
            );
        }
        out
    }
}

/// A spinner on standard error while something slow runs, only on a terminal.
pub struct Spinner {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    pub fn start(what: String) -> Spinner {
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Spinner { done, thread: None };
        }
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let frames = ['|', '/', '-', '\\'];
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r{} {what} ({}s)\x1b[K",
                    frames[i % frames.len()],
                    started.elapsed().as_secs()
                );
                let _ = err.flush();
                drop(err);
                i += 1;
                std::thread::sleep(Duration::from_millis(120));
            }
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        });
        Spinner {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a question can be asked: standard input and error are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` on standard error; true only for "y" or "yes".
pub fn confirm(question: &str) -> std::io::Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// "1 user", "2 users".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_colour_is_only_added_when_asked() {
        let mut t = Table::new(&["USER", "STATE"]);
        t.row(vec![
            ("anna".into(), Tone::Plain),
            ("active".into(), Tone::Good),
        ]);
        t.row(vec![
            ("bo-long".into(), Tone::Plain),
            ("failed".into(), Tone::Bad),
        ]);
        let plain = t.render(false);
        assert_eq!(plain, "USER     STATE\nanna     active\nbo-long  failed\n");
        let coloured = t.render(true);
        assert!(coloured.contains("\x1b[32mactive\x1b[0m"), "{coloured:?}");
    }
}
