//! The benchmark's results: every figure with the ceiling it is judged against, the ratio to it and
//! the target it must meet, printed the moment it is measured and written at the end (and after
//! every step, so an interrupted run keeps what it measured) as `report.json` and `report.md`. A
//! figure that could not be measured is kept, without a value and with the reason, never invented.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// A ceiling: what the machine does at most for the work a figure stands on.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub label: String,
    pub value: f64,
    pub unit: String,
}

/// What a figure must reach, and whether it did.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub text: String,
    pub met: bool,
}

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub section: String,
    pub label: String,
    /// `None` when it could not be measured (the note says why).
    pub value: Option<f64>,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// value / ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Figure {
    pub fn new(section: &str, label: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            section: section.to_owned(),
            label: label.into(),
            value: Some(value),
            unit: unit.to_owned(),
            ceiling: None,
            ratio: None,
            target: None,
            note: None,
        }
    }

    /// A figure that could not be measured, and why.
    pub fn missing(section: &str, label: impl Into<String>, unit: &str, why: impl Into<String>) -> Self {
        Self { value: None, note: Some(why.into()), ..Self::new(section, label, 0.0, unit) }
    }

    /// The ceiling this figure stands against; the ratio follows. A ceiling not measured in this
    /// run (`None`) is left out rather than guessed.
    pub fn ceiling(mut self, label: impl Into<String>, value: Option<f64>, unit: &str) -> Self {
        if let Some(value) = value.filter(|v| *v > 0.0) {
            self.ratio = self.value.map(|v| v / value);
            self.ceiling = Some(Ceiling { label: label.into(), value, unit: unit.to_owned() });
        }
        self
    }

    /// The target, judged by `met` on the measured value (a figure without a value misses it).
    pub fn target(mut self, text: impl Into<String>, met: impl FnOnce(f64, Option<f64>) -> bool) -> Self {
        let met = self.value.is_some_and(|v| met(v, self.ratio));
        self.target = Some(Target { text: text.into(), met });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        self.note = Some(match self.note.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note,
        });
        self
    }

    fn line(&self) -> String {
        let mut line = format!("{}: {}", self.label, value_text(self.value, &self.unit));
        if let Some(c) = &self.ceiling {
            let _ = write!(line, " | ceiling {} {}", c.label, value_text(Some(c.value), &c.unit));
        }
        if let Some(r) = self.ratio {
            let _ = write!(line, " | ratio {}", ratio_text(r));
        }
        if let Some(t) = &self.target {
            let _ = write!(line, " | target {}: {}", t.text, if t.met { "pass" } else { "MISS" });
        }
        if let Some(n) = &self.note {
            let _ = write!(line, " ({n})");
        }
        line
    }
}

/// Every figure of a run, and what the reader must know to judge them.
#[derive(Debug, Serialize)]
pub struct Results {
    pub command: String,
    pub mode: &'static str,
    pub started_at: String,
    pub machine: Vec<(String, String)>,
    /// Wall-clock seconds the run took (set at the end).
    pub duration_seconds: Option<f64>,
    pub notes: Vec<String>,
    pub figures: Vec<Figure>,
}

impl Results {
    pub fn new(command: String, mode: &'static str, started_at: String, machine: Vec<(String, String)>) -> Self {
        Self { command, mode, started_at, machine, duration_seconds: None, notes: Vec::new(), figures: Vec::new() }
    }

    /// Records a figure and prints it at once.
    pub fn add(&mut self, figure: Figure) {
        println!("    {}", figure.line());
        self.figures.push(figure);
    }

    /// A remark that belongs in the report (how something was measured, what was left out).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("    note: {note}");
        self.notes.push(note);
    }

    /// Writes `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        let path = dir.join("report.json");
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
        let path = dir.join("report.md");
        std::fs::write(&path, self.markdown()).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# lagesbild benchmark ({} run)\n", self.mode);
        let took = self.duration_seconds.map(|s| format!(", took {s:.0} s")).unwrap_or_default();
        let _ = writeln!(md, "`{}`, started {}{took}.", self.command, self.started_at);
        let _ = writeln!(md, "\n| machine | |\n|---|---|");
        for (k, v) in &self.machine {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        let targets: Vec<&Figure> = self.figures.iter().filter(|f| f.target.is_some()).collect();
        let met = targets.iter().filter(|f| f.target.as_ref().is_some_and(|t| t.met)).count();
        let _ = writeln!(md, "\nTargets met: {met} of {}.", targets.len());
        for f in targets.iter().filter(|f| f.target.as_ref().is_some_and(|t| !t.met)) {
            let text = f.target.as_ref().map(|t| t.text.as_str()).unwrap_or_default();
            let _ = writeln!(md, "- missed: {}: {} (target {text})", f.label, value_text(f.value, &f.unit));
        }
        let mut sections: Vec<&str> = Vec::new();
        for f in &self.figures {
            if !sections.contains(&f.section.as_str()) {
                sections.push(&f.section);
            }
        }
        for section in sections {
            let _ = writeln!(md, "\n## {section}\n");
            let _ =
                writeln!(md, "| figure | value | ceiling (or what it is compared with) | ratio | target | result |");
            let _ = writeln!(md, "|---|---|---|---|---|---|");
            for f in self.figures.iter().filter(|f| f.section == section) {
                let ceiling = f.ceiling.as_ref().map(|c| format!("{} {}", c.label, value_text(Some(c.value), &c.unit)));
                let label = match &f.note {
                    Some(n) => format!("{} <br><sub>{n}</sub>", f.label),
                    None => f.label.clone(),
                };
                let _ = writeln!(
                    md,
                    "| {label} | {} | {} | {} | {} | {} |",
                    value_text(f.value, &f.unit),
                    ceiling.unwrap_or_default(),
                    f.ratio.map(ratio_text).unwrap_or_default(),
                    f.target.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
                    f.target.as_ref().map(|t| if t.met { "pass" } else { "**miss**" }).unwrap_or_default(),
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }
}

/// A number for people: thousands grouped, a sensible number of decimals.
pub fn value_text(value: Option<f64>, unit: &str) -> String {
    let Some(v) = value else { return "not measured".to_owned() };
    let number = if v.abs() >= 100.0 {
        group_thousands(v.round() as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if unit.is_empty() { number } else { format!("{number} {unit}") }
}

fn ratio_text(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 0.01 {
        format!("{r:.2}x")
    } else {
        format!("{r:.5}x")
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
