//! Progress on the terminal: a bar per step with the object in work, or plain lines when
//! standard error is not a terminal.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Event;
use crate::status::ProgressReport;
use crate::steps::Step;

/// The run's progress display.
pub struct Ui {
    bars: Option<MultiProgress>,
}

/// One step's line.
pub struct StepBar {
    name: &'static str,
    bar: Option<ProgressBar>,
    /// Last `(phase, completed, total)` printed in plain mode.
    last: RefCell<(String, i64, i64)>,
}

impl Ui {
    /// Bars on a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Self { bars }
    }

    /// Starts the line of `step`.
    pub fn step(&self, step: Step) -> StepBar {
        let name = step.as_str();
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(0));
            bar.set_style(style(false));
            bar.set_prefix(name);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            eprintln!("[{name}] started");
        }
        StepBar {
            name,
            bar,
            last: RefCell::new((String::new(), -1, -1)),
        }
    }

    /// Leaves the finished bars on the screen.
    pub fn finish(&self) {
        if let Some(m) = &self.bars {
            let _ = m.clear();
        }
    }
}

/// A spinner while the step's total is unknown (a bar would read `0/0`), then a bar.
fn style(counted: bool) -> ProgressStyle {
    let template = if counted {
        "{prefix:>8} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}"
    } else {
        "{prefix:>8} {spinner} {elapsed:>4} {msg}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `Phase N/M object`, leaving out the counts while the total is unknown and whatever is empty.
fn plain_line(phase: &str, p: &ProgressReport, current: &str) -> String {
    let counts = (p.total > 0).then(|| format!("{}/{}", p.completed, p.total));
    [Some(phase), counts.as_deref(), Some(current)]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl StepBar {
    /// Shows a progress event.
    pub fn event(&self, event: &Event) {
        let Event::Progress(p) = event else { return };
        let phase = p.phase.clone().unwrap_or_default();
        let current = p.current.clone().unwrap_or_default();
        if let Some(bar) = &self.bar {
            if p.total > 0 && bar.length().unwrap_or(0) == 0 {
                bar.set_style(style(true));
            }
            bar.set_length(u64::try_from(p.total).unwrap_or(0));
            bar.set_position(u64::try_from(p.completed + p.failed + p.skipped).unwrap_or(0));
            bar.set_message(format!("{phase} {current}"));
            return;
        }
        let key = (phase.clone(), p.completed, p.total);
        if *self.last.borrow() != key {
            eprintln!("[{}] {}", self.name, plain_line(&phase, p, &current));
            *self.last.borrow_mut() = key;
        }
    }

    /// Marks the step done or failed.
    pub fn done(&self, ok: bool, message: Option<&str>) {
        let word = if ok { "done" } else { "failed" };
        let text = match message {
            Some(m) if !ok => format!("{word}: {m}"),
            _ => word.to_string(),
        };
        match &self.bar {
            Some(bar) => bar.finish_with_message(text),
            None => eprintln!("[{}] {text}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_leave_out_unknown_counts_and_trailing_spaces() {
        let mut p = ProgressReport::default();
        assert_eq!(plain_line("Generating", &p, ""), "Generating");
        p.total = 36;
        assert_eq!(plain_line("Validating", &p, ""), "Validating 0/36");
        p.completed = 2;
        assert_eq!(
            plain_line("Validating", &p, "stg_a"),
            "Validating 2/36 stg_a"
        );
    }
}
