//! `--format`: the API's JSON as returned, the same as YAML, or (the default) a table or
//! key lines for people.

use clap::{Args, ValueEnum};
use serde_json::Value;

use api::{Condition, ConditionState};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table or key lines.
    #[default]
    Text,
    /// The API's JSON.
    Json,
    /// The API's JSON as YAML.
    Yaml,
}

#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl OutputArgs {
    /// Prints `value` as JSON or YAML; `false` when the format is text (the caller prints
    /// its own).
    pub fn print_structured(&self, value: &Value) -> anyhow::Result<bool> {
        match self.format {
            Format::Text => Ok(false),
            Format::Json => {
                println!("{}", serde_json::to_string_pretty(value)?);
                Ok(true)
            }
            Format::Yaml => {
                print!("{}", to_yaml(value)?);
                Ok(true)
            }
        }
    }
}

impl OutputArgs {
    /// Prints `value` as JSON or YAML, and YAML for people too (gcloud's way with
    /// resources that have no view of their own: policies, secrets).
    pub fn print_or_yaml(&self, value: &Value) -> anyhow::Result<()> {
        if !self.print_structured(value)? {
            print!("{}", to_yaml(value)?);
        }
        Ok(())
    }

    /// A list verb's items: printed as JSON or YAML, or none (`Listed 0 items.` on
    /// stderr), and then `None`; else given back for the caller's table.
    pub fn items_for_table(&self, items: Vec<Value>) -> anyhow::Result<Option<Vec<Value>>> {
        let items = Value::Array(items);
        if self.print_structured(&items)? {
            return Ok(None);
        }
        let Value::Array(items) = items else {
            unreachable!("an array")
        };
        if items.is_empty() {
            eprintln!("Listed 0 items.");
            return Ok(None);
        }
        Ok(Some(items))
    }
}

/// A JSON value as a YAML document.
pub fn to_yaml(value: &Value) -> anyhow::Result<String> {
    Ok(serde_norway::to_string(value)?)
}

/// Columns padded to their widest cell, two spaces apart; the last column unpadded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// gcloud's status mark of a resource by its `Ready` condition: ✔ ready, ✖ failed, …
/// on its way.
pub fn ready_mark(ready: Option<&Condition>) -> &'static str {
    match ready.map(|c| c.state) {
        Some(ConditionState::Succeeded) => "✔",
        Some(ConditionState::Failed) => "✖",
        _ => "…",
    }
}

/// `key:  value` lines, the values aligned.
pub struct KeyLines {
    lines: Vec<(String, String)>,
}

impl KeyLines {
    pub fn new() -> KeyLines {
        KeyLines { lines: Vec::new() }
    }

    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.lines.push((key.to_string(), value.into()));
    }

    /// The widest key with its colon.
    pub fn key_width(&self) -> usize {
        self.lines
            .iter()
            .map(|(k, _)| k.chars().count() + 1)
            .max()
            .unwrap_or(0)
    }

    /// The lines with values aligned after `width` (to line up with other blocks).
    pub fn render_aligned(&self, indent: &str, width: usize) -> String {
        let mut out = String::new();
        for (k, v) in &self.lines {
            let key = format!("{k}:");
            out.push_str(format!("{indent}{key:<width$}  {v}").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_all_but_the_last_column() {
        let mut t = Table::new(["A", "LONG HEADER", "C"]);
        t.row(vec!["xyz".into(), "1".into(), "last".into()]);
        assert_eq!(t.render(), "A    LONG HEADER  C\nxyz  1            last\n");
    }

    #[test]
    fn yaml_of_json() {
        let v = serde_json::json!({"name": "hello", "traffic": [{"percent": 100}]});
        assert_eq!(
            to_yaml(&v).unwrap(),
            "name: hello\ntraffic:\n- percent: 100\n"
        );
    }
}
