//! Reports people act on: per-account plans, manager reviews, the portfolio summary and the
//! index, in HTML (self-contained: inline CSS and SVG) and Markdown, from Tera templates.
//!
//! The stage reads the dataset and the scores, never changes them, and writes into the run's
//! staging folder; file names come from [`crate::output::slug`] so nothing leaves it.

pub mod charts;
pub mod context;
pub mod locale;
pub mod previous;
pub mod templates;

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::Dataset;
use crate::output::{Staging, pipelined, slug};
use crate::rules::RuleSet;
use crate::score::Scored;
pub use context::Inputs;
pub use previous::Previous;
pub use templates::Templates;

/// Reports rendered at a time on the worker threads while the calling thread writes the ones
/// before (one writer: no contention on the folder).
const WINDOW: usize = 64;

/// How to render one workbook's reports.
pub struct Options<'a> {
    /// Plans for every account, not only the bands marked `plan`.
    pub all_plans: bool,
    /// Write no account plan (`--no-plans`).
    pub no_plans: bool,
    /// The previous run, for movements and actions done since.
    pub previous: Option<&'a Previous>,
    /// A template that fails to render stops the run (else the report is skipped and listed).
    pub strict: bool,
    /// Folder prefix inside the output (`""`, or `north/` in a batch).
    pub prefix: &'a str,
}

/// What was written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    /// Account plans (each in HTML and Markdown).
    pub plans: usize,
    /// Manager reviews (each in HTML and Markdown).
    pub reviews: usize,
    /// Reports that could not be rendered (non-strict): (file, error).
    pub problems: Vec<(String, String)>,
}

/// Unique file stems from (key, text) pairs: slugged, numbered on collision.
fn unique_stems<K: Clone + Eq + std::hash::Hash>(items: &[(K, String)]) -> HashMap<K, String> {
    let mut used = std::collections::HashSet::new();
    let mut out = HashMap::new();
    for (k, text) in items {
        let base = slug(text);
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.insert(k.clone(), name);
    }
    out
}

/// The last day the data covers: the KAM period's `as_of`, else the latest activity or
/// transaction quarter; never the wall clock (outputs must not change with the day of the run).
fn as_of(ds: &Dataset, scored: &Scored) -> Option<f64> {
    if let Some(x) = scored.managers.as_ref().and_then(|m| m.period.as_of) {
        return Some(x);
    }
    ds.activities
        .iter()
        .filter_map(|a| a.date)
        .chain(ds.tenders.iter().filter_map(|t| t.date))
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
}

fn render_pair(
    templates: &Templates,
    base: &str,
    ctx: &tera::Context,
) -> Vec<(String, Result<String>)> {
    vec![
        (
            format!("{base}.html"),
            templates.render(&format!("{base}.html"), ctx),
        ),
        (
            format!("{base}.md"),
            templates.render(&format!("{base}.md"), ctx),
        ),
    ]
}

/// Renders and writes every report of one workbook. `progress` is called with the number of
/// reports done so far.
#[allow(clippy::too_many_arguments)]
pub fn write_all(
    staging: &Staging,
    templates: &mut Templates,
    ds: &Dataset,
    scored: &Scored,
    rules: &RuleSet,
    portfolio_json: serde_json::Value,
    opts: &Options<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Written> {
    let index = context::Index::new(ds, scored);
    let planned: Vec<&crate::score::AccountResult> = index
        .ranked(scored)
        .filter(|r| !opts.no_plans && (opts.all_plans || r.plan))
        .collect();
    let plan_stems = unique_stems(
        &planned
            .iter()
            .map(|r| {
                let a = &ds.accounts[r.index];
                (r.index, format!("{} {}", a.id, a.name))
            })
            .collect::<Vec<_>>(),
    );
    let plan_links: HashMap<usize, String> = plan_stems
        .iter()
        .map(|(k, v)| (*k, format!("plans/{v}")))
        .collect();
    let managers: Vec<&crate::score::kams::ManagerResult> = scored
        .managers
        .as_ref()
        .map(|m| {
            let mut v: Vec<_> = m.managers.iter().collect();
            v.sort_by_key(|k| k.rank);
            v
        })
        .unwrap_or_default();
    let review_stems = unique_stems(
        &managers
            .iter()
            .map(|m| (m.kam_id.clone(), m.kam_id.clone()))
            .collect::<Vec<_>>(),
    );
    let review_links: HashMap<String, String> = review_stems
        .iter()
        .map(|(k, v)| (k.clone(), format!("reviews/{v}")))
        .collect();
    let inputs = Inputs {
        ds,
        scored,
        rules,
        previous: opts.previous,
        index: &index,
        plan_links: &plan_links,
        review_links: &review_links,
        as_of: as_of(ds, scored),
    };
    let mut common = inputs.common();
    common.lang = templates.locale.code();
    templates.set_common(&common);
    let templates: &Templates = templates;
    let done = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(n);
    };
    let write =
        |name: &str, text: &str| staging.write(&format!("{}{name}", opts.prefix), text.as_bytes());

    // Plans and reviews: each chunk is rendered on the worker threads while this thread writes
    // the chunk before it, in a fixed order (one writer: no contention on the folder).
    for (dir, n) in [("plans", planned.len()), ("reviews", managers.len())] {
        if n > 0 {
            staging.mkdir(&format!("{}{dir}", opts.prefix))?;
        }
    }
    let mut written = Written::default();
    let mut record = |pair: Vec<(String, Result<String>)>, count: &mut usize| -> Result<()> {
        let mut ok = true;
        for (name, text) in pair {
            match text {
                Ok(t) => staging.write_file(&format!("{}{name}", opts.prefix), t.as_bytes())?,
                Err(Error::Template(msg)) if !opts.strict => {
                    ok = false;
                    written.problems.push((name, msg));
                }
                Err(e) => return Err(e),
            }
        }
        *count += ok as usize;
        tick();
        Ok(())
    };
    let render_plan = |r: &&crate::score::AccountResult| {
        render_one(
            templates,
            "plan",
            &plan_links[&r.index],
            tera::Context::from_serialize(&inputs.plan(r)),
        )
    };
    let reports = || -> Result<(usize, usize)> {
        let mut plans = 0;
        pipelined(&planned, WINDOW, &render_plan, &mut |pair| {
            record(pair, &mut plans)
        })?;
        let mut reviews = 0;
        if let Some(all) = &scored.managers {
            let render_review = |m: &&crate::score::kams::ManagerResult| {
                render_one(
                    templates,
                    "review",
                    &review_links[&m.kam_id],
                    inputs.review(all, m).into_context(),
                )
            };
            pipelined(&managers, WINDOW, &render_review, &mut |pair| {
                record(pair, &mut reviews)
            })?;
        }
        Ok((plans, reviews))
    };
    // The portfolio's data is gathered while the plans render.
    let (counts, portfolio) = rayon::join(reports, || {
        tera::Context::from_serialize(&inputs.portfolio(
            portfolio_json,
            &templates.strings,
            templates.locale,
        ))
        .map_err(|e| Error::Template(format!("portfolio context: {e}")))
    });
    (written.plans, written.reviews) = counts?;
    let mut ctx = portfolio?;
    ctx.insert("root", "");
    ctx.insert("plans_written", &written.plans);
    ctx.insert("reviews_written", &written.reviews);
    ctx.insert("problems", &written.problems);
    let pages: Vec<(String, Result<String>)> = ["portfolio", "index"]
        .par_iter()
        .flat_map_iter(|base| render_pair(templates, base, &ctx))
        .collect();
    for (name, text) in pages {
        match text {
            Ok(t) => write(&name, &t)?,
            Err(Error::Template(msg)) if !opts.strict => {
                written.problems.push((name, msg));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// One report of a folder (`plans/`, `reviews/`) in both formats: (file, text or error).
fn render_one(
    templates: &Templates,
    base: &str,
    link: &str,
    context: tera::TeraResult<tera::Context>,
) -> Vec<(String, Result<String>)> {
    match context {
        Ok(mut c) => {
            c.insert("root", "../");
            render_pair(templates, base, &c)
                .into_iter()
                .map(|(name, text)| (format!("{link}{}", &name[base.len()..]), text))
                .collect()
        }
        Err(e) => vec![(
            link.to_string(),
            Err(Error::Template(format!("{base} context: {e}"))),
        )],
    }
}
