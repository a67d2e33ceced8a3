//! The report templates: the defaults compiled into the binary, overridden by name from a
//! user folder (`--templates DIR`), with kam's filters registered.
//!
//! Two Tera instances share the templates: one renders `.html` with HTML escaping, the other
//! `.md` with Markdown escaping, so every value printed is escaped for its format unless a
//! template marks it `safe`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tera::{Kwargs, State, Tera, Value};

use super::locale::Locale;
use crate::error::{Error, Result};

/// The default templates: (name, text). `kam init` writes them; a file of the same name in
/// `--templates DIR` replaces one.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("style.css", include_str!("../../templates/style.css")),
    ("index.html", include_str!("../../templates/index.html")),
    (
        "portfolio.html",
        include_str!("../../templates/portfolio.html"),
    ),
    ("plan.html", include_str!("../../templates/plan.html")),
    ("review.html", include_str!("../../templates/review.html")),
    ("index.md", include_str!("../../templates/index.md")),
    ("portfolio.md", include_str!("../../templates/portfolio.md")),
    ("plan.md", include_str!("../../templates/plan.md")),
    ("review.md", include_str!("../../templates/review.md")),
    ("batch.html", include_str!("../../templates/batch.html")),
    ("batch.md", include_str!("../../templates/batch.md")),
];

/// The language files: (code, text), under `lang/` in a templates folder.
pub const DEFAULT_LANGS: &[(&str, &str)] = &[
    ("en", include_str!("../../templates/lang/en.yaml")),
    ("ru", include_str!("../../templates/lang/ru.yaml")),
];

/// Where one template came from, for `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// Template name (`plan.html`).
    pub name: String,
    /// `embedded`, or the file it was read from.
    pub origin: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
}

/// The loaded templates, ready to render.
pub struct Templates {
    html: Tera,
    md: Tera,
    /// The language.
    pub locale: Locale,
    /// The language's strings (`t` in templates).
    pub strings: BTreeMap<String, String>,
    /// Every template and language file used, with its origin and hash.
    pub sources: Vec<TemplateSource>,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn read_user(dir: &Path, name: &str) -> Result<Option<(PathBuf, String)>> {
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("cannot read template {}", path.display()), e))?;
    Ok(Some((path, text)))
}

/// Names of user files in `dir` that look like templates (`.html`, `.md`, `.css`).
fn user_extras(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::io(
            format!("cannot read the templates folder {}", dir.display()),
            e,
        )
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let known = DEFAULT_TEMPLATES.iter().any(|(n, _)| *n == name);
        let ext_ok = name.ends_with(".html") || name.ends_with(".md") || name.ends_with(".css");
        if !known && ext_ok && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Turns a Tera error into kam's: the template's file (or embedded name), line, the line
/// itself and a caret, as Tera reports them.
pub fn template_error(origins: &BTreeMap<String, String>, e: &tera::Error) -> Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    // Tera names the template; say where its text came from.
    for (name, origin) in origins {
        if origin != "embedded" {
            text = text.replace(&format!("--> {name}:"), &format!("--> {origin}:"));
        }
    }
    Error::Template(text.trim_start_matches("error: ").to_string())
}

impl Templates {
    /// Loads the defaults, replaced by name from `dir`, for language `lang`.
    pub fn load(dir: Option<&Path>, lang: &str) -> Result<Templates> {
        let locale = Locale::from_code(lang).ok_or_else(|| {
            Error::Usage(format!(
                "unknown --lang `{lang}`: kam has {}",
                DEFAULT_LANGS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if let Some(d) = dir
            && !d.is_dir()
        {
            return Err(Error::Usage(format!(
                "the templates folder {} does not exist (run `kam init DIR` to get the defaults)",
                d.display()
            )));
        }
        let mut sources = Vec::new();
        let mut texts: Vec<(String, String)> = Vec::new();
        for (name, text) in DEFAULT_TEMPLATES {
            let (origin, text) = match dir.map(|d| read_user(d, name)).transpose()?.flatten() {
                Some((p, t)) => (p.display().to_string(), t),
                None => ("embedded".to_string(), text.to_string()),
            };
            sources.push(TemplateSource {
                name: name.to_string(),
                origin,
                sha256: sha256_hex(text.as_bytes()),
            });
            texts.push((name.to_string(), text));
        }
        if let Some(d) = dir {
            for name in user_extras(d)? {
                let (p, t) = read_user(d, &name)?.unwrap_or_default();
                sources.push(TemplateSource {
                    name: name.clone(),
                    origin: p.display().to_string(),
                    sha256: sha256_hex(t.as_bytes()),
                });
                texts.push((name, t));
            }
        }
        let lang_name = format!("lang/{}.yaml", locale.code());
        let default_lang = DEFAULT_LANGS
            .iter()
            .find(|(c, _)| *c == locale.code())
            .map(|(_, t)| *t)
            .unwrap_or_default();
        let (lang_origin, lang_text) =
            match dir.map(|d| read_user(d, &lang_name)).transpose()?.flatten() {
                Some((p, t)) => (p.display().to_string(), t),
                None => ("embedded".to_string(), default_lang.to_string()),
            };
        let strings = parse_strings(&lang_origin, &lang_name, &lang_text, default_lang)?;
        sources.push(TemplateSource {
            name: lang_name,
            origin: lang_origin,
            sha256: sha256_hex(lang_text.as_bytes()),
        });
        let origins: BTreeMap<String, String> = sources
            .iter()
            .map(|s| (s.name.clone(), s.origin.clone()))
            .collect();
        let build = |suffix: &str, escape: tera::EscapeFn| -> Result<Tera> {
            let mut tera = Tera::new();
            tera.autoescape_on([suffix.to_string()]);
            tera.set_escape_fn(escape);
            register_filters(&mut tera, locale, std::sync::Arc::new(strings.clone()));
            tera.add_raw_templates(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
                .map_err(|e| template_error(&origins, &e))?;
            Ok(tera)
        };
        Ok(Templates {
            html: build(".html", tera::escape_html)?,
            md: build(".md", escape_markdown)?,
            locale,
            strings,
            sources,
        })
    }

    /// Sets what every template sees (`t`, `common`, `lang`) for the workbook about to render.
    pub fn set_common(&mut self, common: &super::context::Common) {
        for tera in [&mut self.html, &mut self.md] {
            let g = tera.global_context();
            g.insert("t", &self.strings);
            g.insert("common", common);
            g.insert("lang", self.locale.code());
        }
    }

    /// Renders template `name` (`.html` escapes HTML, `.md` escapes Markdown).
    pub fn render(&self, name: &str, ctx: &tera::Context) -> Result<String> {
        let tera = if name.ends_with(".md") {
            &self.md
        } else {
            &self.html
        };
        tera.render(name, ctx).map_err(|e| {
            let origins: BTreeMap<String, String> = self
                .sources
                .iter()
                .map(|s| (s.name.clone(), s.origin.clone()))
                .collect();
            template_error(&origins, &e)
        })
    }

    /// The text of a template that is not rendered (the stylesheet).
    pub fn raw(&self, name: &str) -> Option<String> {
        let origin = self.sources.iter().find(|s| s.name == name)?;
        if origin.origin == "embedded" {
            DEFAULT_TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
        } else {
            std::fs::read_to_string(&origin.origin).ok()
        }
    }
}

/// Parses a language file: a flat map of key → text. A user file must have every key the
/// default has (a missing key would print nothing), and no key the default lacks, except the
/// plural forms `key_one` and `key_few` of a key it has, which are optional.
fn parse_strings(
    origin: &str,
    name: &str,
    text: &str,
    default: &str,
) -> Result<BTreeMap<String, String>> {
    let parse = |t: &str, at: &str| -> Result<BTreeMap<String, String>> {
        serde_yaml::from_str::<BTreeMap<String, String>>(t).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            Error::Template(format!(
                "{at}{loc}: {e}\n  hint: a language file is a flat list of `key: text` lines"
            ))
        })
    };
    let at = if origin == "embedded" { name } else { origin };
    let strings = parse(text, at)?;
    let reference = parse(default, name)?;
    // `key_one` and `key_few` are a word's other plural forms (the `plural` filter): a file
    // may add them for any key and need not have those the default has.
    let plural_of = |k: &str| {
        ["_one", "_few"]
            .iter()
            .find_map(|f| k.strip_suffix(f))
            .filter(|base| reference.contains_key(*base))
            .is_some()
    };
    if let Some(missing) = reference
        .keys()
        .find(|k| !strings.contains_key(*k) && !plural_of(k))
    {
        return Err(Error::Template(format!(
            "{at}: the key `{missing}` is missing (copy it from the default with `kam init`)"
        )));
    }
    if let Some(extra) = strings
        .keys()
        .find(|k| !reference.contains_key(*k) && !plural_of(k))
    {
        let hint = crate::diag::did_you_mean(extra, reference.keys().map(|s| s.as_str()))
            .map(|s| format!(": did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(Error::Template(format!(
            "{at}: unknown key `{extra}`{hint}"
        )));
    }
    Ok(strings)
}

/// Escapes text for Markdown: characters with inline meaning are backslashed, `<` and `>` become
/// entities (no raw HTML), line breaks become spaces (table cells stay one line).
pub fn escape_markdown(input: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let bytes = input.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'\\' => b"\\\\",
            b'`' => b"\\`",
            b'*' => b"\\*",
            b'_' => b"\\_",
            b'[' => b"\\[",
            b']' => b"\\]",
            b'|' => b"\\|",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'\n' | b'\r' => b" ",
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        out.write_all(rep)?;
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

fn as_number(v: &Value) -> Option<f64> {
    if v.is_none() || v.is_undefined() {
        return None;
    }
    v.as_f64()
}

fn register_filters(
    tera: &mut Tera,
    locale: Locale,
    strings: std::sync::Arc<BTreeMap<String, String>>,
) {
    let words = strings.clone();
    // `label(prefix="quadrant_")`: the language's text for a code, else `fallback`, else the
    // code itself; none prints the language's "not known".
    tera.register_filter(
        "label",
        move |v: &Value, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let prefix: Option<String> = kwargs.get("prefix")?;
            let fallback: Option<String> = kwargs.get("fallback")?;
            if v.is_none() || v.is_undefined() {
                return Ok(strings.get("not_known").cloned().unwrap_or_default());
            }
            let code = match v.as_str() {
                Some(s) => s.to_string(),
                None => v.to_string(),
            };
            let key = format!("{}{code}", prefix.unwrap_or_default());
            Ok(strings
                .get(&key)
                .cloned()
                .or(fallback.filter(|f| !f.is_empty()))
                .unwrap_or(code))
        },
    );
    // `n | plural(key="review_rows")`: the language's word for `n` of something, by the
    // language's plural rule: `t[key ~ "_one"]`, `t[key ~ "_few"]` or `t[key]` (a form the
    // language file lacks falls back to `t[key]`).
    tera.register_filter(
        "plural",
        move |v: &Value, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let key: String = kwargs.must_get("key")?;
            let Some(base) = words.get(&key) else {
                return Err(tera::Error::message(format!(
                    "plural: the language file has no key `{key}`"
                )));
            };
            let form = as_number(v).map_or("many", |n| locale.plural_form(n));
            Ok(words.get(&format!("{key}_{form}")).unwrap_or(base).clone())
        },
    );
    // Each takes a number or none; none prints as an em dash ("not known").
    tera.register_filter("money", move |v: &Value, _: Kwargs, _: &State| {
        as_number(v).map_or("—".to_string(), |x| locale.money(x))
    });
    tera.register_filter("pct", move |v: &Value, _: Kwargs, _: &State| {
        as_number(v).map_or("—".to_string(), |x| locale.percent(x))
    });
    tera.register_filter(
        "num",
        move |v: &Value, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let digits: Option<i64> = kwargs.get("digits")?;
            Ok(as_number(v).map_or("—".to_string(), |x| {
                let d = digits.unwrap_or(if x.fract() == 0.0 { 0 } else { 1 });
                locale.number(x, d.clamp(0, 9) as usize)
            }))
        },
    );
    tera.register_filter("date", move |v: &Value, _: Kwargs, _: &State| {
        as_number(v).map_or("—".to_string(), |x| locale.date(x))
    });
    tera.register_filter(
        "delta",
        move |v: &Value, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let kind: Option<String> = kwargs.get("kind")?;
            Ok(as_number(v).map_or("—".to_string(), |x| {
                locale.delta(x, kind.as_deref().unwrap_or("money"))
            }))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_in_every_language() {
        for (code, _) in DEFAULT_LANGS {
            let t = Templates::load(None, code).unwrap();
            assert!(t.strings.contains_key("plan_title"), "{code}");
        }
        let err = Templates::load(None, "fr").err().unwrap().to_string();
        assert!(err.contains("unknown --lang `fr`"), "{err}");
    }

    #[test]
    fn plural_forms_are_optional_keys_of_keys_the_language_has() {
        let default = "review_rows: rows\nreview_rows_one: row\nnot_known: not known\n";
        // A file without the plural form, and one adding a form the default lacks.
        let plain = parse_strings("x.yaml", "en", "review_rows: r\nnot_known: nk\n", default);
        assert_eq!(plain.unwrap().get("review_rows_one"), None);
        let few = "review_rows: r\nreview_rows_few: rr\nnot_known: nk\nnot_known_one: nk\n";
        let few = parse_strings("x.yaml", "en", few, default).unwrap();
        assert_eq!(few["review_rows_few"], "rr");
        // A form of a key the language does not have is an unknown key.
        let bad = "review_rows: r\nnot_known: nk\nreview_row_one: x\n";
        let err = parse_strings("x.yaml", "en", bad, default).unwrap_err();
        assert!(
            err.to_string().contains("unknown key `review_row_one`"),
            "{err}"
        );
    }

    #[test]
    fn markdown_is_escaped() {
        let mut out = Vec::new();
        escape_markdown("<b>|*x*|\n", &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "&lt;b&gt;\\|\\*x\\*\\| ");
    }
}
