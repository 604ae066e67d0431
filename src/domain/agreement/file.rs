//! Agreement files (`policies/*.toml`): reading one into an [`Agreement`], and reporting every
//! problem by its path in the document and the line it is on, for the people who write them. TOML
//! was chosen over YAML because its values have no implicit types (YAML 1.1 reads the Norwegian
//! country code `NO` as `false`) and its parser reports lines and columns; the JSON Schema in
//! `policies/schema/` lets editors help with either.

use crate::domain::ValidationErrors;
use crate::domain::agreement::Agreement;

/// One problem in an agreement file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// 1-based; absent when the problem has no single place.
    pub line: Option<usize>,
    /// Where in the document, such as `flows[1].fields.location`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Reads and checks an agreement; under a framework, also checks it only narrows the framework.
pub fn read(text: &str, framework: Option<&Agreement>) -> Result<Agreement, Vec<FileProblem>> {
    let agreement: Agreement = toml::from_str(text).map_err(|e| vec![syntax_problem(text, &e)])?;
    let mut problems = Vec::new();
    if let Err(errors) = agreement.check() {
        problems.extend(locate(text, &errors));
    }
    match (&agreement.framework, framework) {
        (Some(_), Some(framework)) => {
            if let Err(errors) = agreement.check_within(framework) {
                problems.extend(locate(text, &errors));
            }
        }
        (Some(id), None) => problems.push(FileProblem {
            line: line_of(text, "framework"),
            path: "framework".into(),
            message: format!("sits under framework {id}: check it together with that agreement's file"),
        }),
        (None, Some(framework)) => problems.push(FileProblem {
            line: None,
            path: "framework".into(),
            message: format!("a framework ({}) was given, but the agreement does not name one", framework.id),
        }),
        (None, None) => {}
    }
    if problems.is_empty() { Ok(agreement) } else { Err(problems) }
}

/// The JSON Schema of agreement files, as committed in `policies/schema/agreement.schema.json`.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Agreement);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn syntax_problem(text: &str, error: &toml::de::Error) -> FileProblem {
    let line = error.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    FileProblem { line, path: "document".into(), message: error.message().to_owned() }
}

fn locate(text: &str, errors: &ValidationErrors) -> Vec<FileProblem> {
    errors
        .errors()
        .iter()
        .map(|e| FileProblem { line: line_of(text, &e.field), path: e.field.clone(), message: e.message.clone() })
        .collect()
}

/// The line a path such as `flows[1].fields.location` or `parties[0].org_id` is written on, found
/// by walking the file's tables: the i-th `[[flows]]`, then `[flows.fields]` after it, then the key.
/// Inline tables and arrays are found by their key; when a part cannot be found, the line of the
/// deepest part that was is given.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    let mut table = String::new();
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let qualified = if table.is_empty() { name.to_owned() } else { format!("{table}.{name}") };
        let header = |l: &str, h: &str| l.trim() == format!("[[{h}]]") || l.trim() == format!("[{h}]");
        let key = |l: &str| {
            let t = l.trim_start();
            t.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with('='))
        };
        let nth_table = index.and_then(|i| {
            lines.iter().enumerate().skip(from).filter(|(_, l)| header(l, &qualified)).nth(i).map(|(n, _)| n)
        });
        // An index into an inline array (`to = [...]`) is found by its key.
        let position = nth_table.or_else(|| {
            lines.iter().enumerate().skip(from).find(|(_, l)| header(l, &qualified) || key(l)).map(|(n, _)| n)
        });
        match position {
            Some(n) => {
                found = Some(n + 1);
                from = n;
                if lines[n].trim_start().starts_with('[') {
                    table = qualified;
                }
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FLOWS: &str = r#"
id = "se-test-agreement"
title = "Test"
purpose = "Testing"
valid_from = 2026-01-01T00:00:00Z
valid_until = 2027-01-01T00:00:00Z
evaluation_date = 2026-06-30
retention_days = 90

[[parties]]
org_id = "se-a"
name = "A"
role = "municipality"

[[parties]]
org_id = "se-b"
name = "B"
role = "guard_company"

[[flows]]
from = ["se-a"]
to = ["se-b"]
categories = ["vandalism"]
max_tlp = "AMBER"

[[flows]]
from = ["se-a"]
to = ["se-c"]
categories = ["theft"]
max_tlp = "RED"

[flows.fields]
location = "grid 200m"
place = "keep"
"#;

    #[test]
    fn problems_carry_their_path_and_line() {
        let problems = read(TWO_FLOWS, None).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            shown.contains(&"line 28: flows[1].to[0]: se-c is not a party to the agreement".to_owned()),
            "{shown:#?}"
        );
        assert!(shown.contains(&"line 30: flows[1].max_tlp: TLP:RED never leaves a node".to_owned()), "{shown:#?}");
        assert!(shown.iter().any(|s| s.starts_with("line 34: flows[1].fields.place")), "{shown:#?}");
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_their_line() {
        let text = TWO_FLOWS.replace("retention_days = 90", "retention_days = 90\nretention = 30");
        let problem = &read(&text, None).unwrap_err()[0];
        assert_eq!(problem.line, Some(9), "{problem}");
        assert!(problem.message.contains("retention"), "{problem}");
        let text = TWO_FLOWS.replace("location = \"grid 200m\"", "location = \"grid 2m\"");
        let problem = &read(&text, None).unwrap_err()[0];
        assert_eq!(problem.line, Some(33), "{problem}");
    }
}
