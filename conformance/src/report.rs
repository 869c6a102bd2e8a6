//! Verdicts: how a module ends, and how conditions are recorded (FAILURE / WARNING / stop).

use std::fmt::Display;
use std::time::Duration;

/// The final result of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// One module's result line.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub verdict: Verdict,
    /// Why it failed or was skipped.
    pub reason: String,
    /// WARNING-level findings (the module still passes).
    pub warnings: Vec<String>,
    /// What the module saw (requests, tokens, claims), printed with `--verbose`.
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl Outcome {
    /// The line printed for this module.
    pub fn line(&self) -> String {
        match self.verdict {
            Verdict::Pass if self.warnings.is_empty() => format!("PASS  {}", self.id),
            Verdict::Pass => format!(
                "PASS  {}  (warning: {})",
                self.id,
                self.warnings.join("; warning: ")
            ),
            Verdict::Fail => {
                let mut line = format!("FAIL  {}  {}", self.id, self.reason);
                if !self.warnings.is_empty() {
                    line.push_str(&format!(
                        "  (warning: {})",
                        self.warnings.join("; warning: ")
                    ));
                }
                line
            }
            Verdict::Skip => format!("SKIP  {}  {}", self.id, self.reason),
        }
    }
}

/// How a module stops early: `callAndStopOnFailure` failed, or the module is skipped.
#[derive(Debug, Clone)]
pub enum Stop {
    Fail(String),
    Skip(String),
}

/// A step of a module: its value, or the reason it stopped.
pub type Step<T> = Result<T, Stop>;

/// A STOP-level failure of the named condition.
pub fn stop<T>(condition: &str, message: impl Display) -> Step<T> {
    Err(Stop::Fail(format!("{condition}: {message}")))
}

/// Skips the module.
pub fn skip<T>(message: impl Display) -> Step<T> {
    Err(Stop::Skip(message.to_string()))
}

/// The level a condition is recorded at when it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `callAndStopOnFailure`: failure, and the module ends.
    Stop,
    /// `callAndContinueOnFailure(.., FAILURE)`.
    Failure,
    /// `callAndContinueOnFailure(.., WARNING)`.
    Warning,
}

/// A condition that did not hold.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub condition: &'static str,
    pub message: String,
}

impl Finding {
    pub fn new(level: Level, condition: &'static str, message: impl Into<String>) -> Self {
        Self {
            level,
            condition,
            message: message.into(),
        }
    }
}

/// What a module has recorded so far.
#[derive(Debug, Default)]
pub struct Record {
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

impl Record {
    /// Records a FAILURE and goes on.
    pub fn failure(&mut self, condition: &str, message: impl Display) {
        self.failures.push(format!("{condition}: {message}"));
    }

    /// Records a WARNING.
    pub fn warning(&mut self, condition: &str, message: impl Display) {
        self.warnings.push(format!("{condition}: {message}"));
    }

    /// Notes evidence for `--verbose`.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Records findings; a STOP-level one ends the module.
    pub fn apply(&mut self, findings: Vec<Finding>) -> Step<()> {
        let mut stop_with = None;
        for f in findings {
            match f.level {
                Level::Stop => {
                    if stop_with.is_none() {
                        stop_with = Some(format!("{}: {}", f.condition, f.message));
                    }
                }
                Level::Failure => self.failure(f.condition, f.message),
                Level::Warning => self.warning(f.condition, f.message),
            }
        }
        match stop_with {
            Some(reason) => Err(Stop::Fail(reason)),
            None => Ok(()),
        }
    }

    /// The module's outcome from its last step and what was recorded.
    pub fn finish(self, id: String, result: Step<()>, elapsed: Duration) -> Outcome {
        let Record {
            failures,
            warnings,
            notes,
        } = self;
        let (verdict, reason) = match result {
            Err(Stop::Skip(reason)) => {
                let reason = if failures.is_empty() {
                    reason
                } else {
                    format!("{reason} (after: {})", failures.join("; "))
                };
                (Verdict::Skip, reason)
            }
            Err(Stop::Fail(reason)) => {
                let mut all = failures;
                all.push(reason);
                (Verdict::Fail, all.join("; "))
            }
            Ok(()) if failures.is_empty() => (Verdict::Pass, String::new()),
            Ok(()) => (Verdict::Fail, failures.join("; ")),
        };
        Outcome {
            id,
            verdict,
            reason,
            warnings,
            notes,
            elapsed,
        }
    }
}
