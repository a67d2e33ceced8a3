//! `kam schema`: prints the workbook data model from the same table import uses.

use clap::{Args, ValueEnum};

use crate::error::Result;
use crate::model::schema::{FieldKind, SheetKind};

/// Arguments of `kam schema`.
#[derive(Debug, Args, Default)]
pub struct SchemaArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Text)]
    pub format: SchemaFormat,
    /// Only this sheet (e.g. Accounts).
    #[arg(long)]
    pub sheet: Option<String>,
}

/// How `kam schema` prints.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum SchemaFormat {
    /// Readable text.
    #[default]
    Text,
    /// Markdown tables (as in docs/workbook.md).
    Markdown,
    /// JSON, for tools.
    Json,
}

fn kind_text(kind: FieldKind) -> String {
    match kind {
        FieldKind::Choice(choices) => {
            format!(
                "one of {}",
                choices
                    .iter()
                    .map(|c| c.value)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => other.label().to_string(),
    }
}

/// Renders the schema in a format.
pub fn render(format: SchemaFormat, only: Option<SheetKind>) -> String {
    let sheets: Vec<SheetKind> = SheetKind::ALL
        .into_iter()
        .filter(|k| only.is_none_or(|o| o == *k))
        .collect();
    let mut out = String::new();
    match format {
        SchemaFormat::Text => {
            for k in sheets {
                out.push_str(&format!(
                    "{}  (also: {})\n",
                    k.name(),
                    k.aliases()[1..].join(", ")
                ));
                out.push_str(&format!("  {}\n", k.description()));
                for f in k.fields() {
                    let req = if f.required { " (required)" } else { "" };
                    out.push_str(&format!("  {:<18} {}{req}\n", f.name, kind_text(f.kind)));
                    out.push_str(&format!("  {:<18} {}\n", "", f.doc));
                    out.push_str(&format!("  {:<18} headers: {}\n", "", f.aliases.join(", ")));
                }
                out.push('\n');
            }
            out.push_str(
                "Any other column is kept and reachable by rules under its snake_case name.\n",
            );
        }
        SchemaFormat::Markdown => {
            for k in sheets {
                out.push_str(&format!(
                    "### {}\n\n{}\n\nSheet names recognised: {}.\n\n",
                    k.name(),
                    k.description(),
                    k.aliases().join(", ")
                ));
                out.push_str("| field | type | required | meaning | headers recognised |\n|---|---|---|---|---|\n");
                for f in k.fields() {
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {} | {} |\n",
                        f.name,
                        kind_text(f.kind),
                        if f.required { "yes" } else { "" },
                        f.doc.replace('|', "\\|"),
                        f.aliases.join(", ")
                    ));
                }
                out.push('\n');
            }
        }
        SchemaFormat::Json => {
            let v: Vec<serde_json::Value> = sheets
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "sheet": k.name(),
                        "aliases": k.aliases(),
                        "description": k.description(),
                        "fields": k.fields().iter().map(|f| serde_json::json!({
                            "name": f.name,
                            "type": f.kind.label(),
                            "values": match f.kind { FieldKind::Choice(c) => c.iter().map(|c| c.value).collect::<Vec<_>>(), _ => vec![] },
                            "required": f.required,
                            "doc": f.doc,
                            "aliases": f.aliases,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            out = serde_json::to_string_pretty(&v).unwrap_or_default();
            out.push('\n');
        }
    }
    out
}

/// Runs `kam schema`.
pub fn execute(args: &SchemaArgs) -> Result<u8> {
    let only = match &args.sheet {
        None => None,
        Some(name) => Some(SheetKind::from_name(name).ok_or_else(|| {
            let names = SheetKind::ALL.map(|k| k.name());
            let hint = crate::diag::did_you_mean(name, names)
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            crate::Error::Usage(format!(
                "no sheet `{name}` in the data model (sheets: {}){hint}",
                names.join(", ")
            ))
        })?),
    };
    print!("{}", render(args.format, only));
    Ok(super::EXIT_OK)
}
