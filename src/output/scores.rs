//! `scores.json`: the versioned record of a scoring run (schema `kam-scores/1`, documented in
//! `docs/outputs.md`).

use serde_json::{Map, Value as Json, json};

use crate::model::value::format_date;

use crate::model::Dataset;
use serde::Serialize;

use crate::score::kams::{KamScored, ManagerResult};
use crate::score::{AccountResult, Contribution, Flag, Scored};

/// The schema identifier written into every scores.json.
pub const SCHEMA: &str = "kam-scores/1";

fn num(x: Option<f64>) -> Json {
    x.map_or(Json::Null, |v| json!(round9(v)))
}

fn round9(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

fn contribution(c: &Contribution) -> Json {
    let mut out = Vec::new();
    contribution_json(&mut out, c, &mut Vec::new());
    serde_json::from_slice(&out).unwrap_or(Json::Null)
}

fn flag(f: &Flag) -> Json {
    json!({ "check": f.check, "flag": f.flag, "reason": f.reason, "actions": f.actions })
}

/// The plan actions of each account (indexes into `ds.plans`), for [`AccountJson`].
pub fn actions_index(ds: &Dataset) -> Vec<Vec<u32>> {
    let mut ix = vec![Vec::new(); ds.accounts.len()];
    for (i, p) in ds.plans.iter().enumerate() {
        if p.kind == "action" {
            ix[p.account].push(i as u32);
        }
    }
    ix
}

/// Serialises accounts for `scores.json`; shared by the scoring threads, so each account is
/// turned into JSON on the thread that scored it. The JSON is written straight from the
/// results, keys in alphabetical order like every object of the document (a million accounts
/// are a large part of a run's time).
pub struct AccountJson<'a> {
    ds: &'a Dataset,
    output_names: &'a [String],
    measure_names: &'a [String],
    /// The outputs and measures in key order, each name once (the last value of a name, as
    /// a JSON object built from them would keep).
    output_order: Vec<usize>,
    measure_order: Vec<usize>,
    actions: Vec<Vec<u32>>,
}

/// Positions of `n` keys in key order, each key once (its last position).
fn key_order<'k>(n: usize, key: impl Fn(usize) -> &'k str, into: &mut Vec<usize>) {
    into.clear();
    into.extend(0..n);
    into.sort_by(|&a, &b| key(a).cmp(key(b)));
    let mut i = 0;
    while i + 1 < into.len() {
        if key(into[i]) == key(into[i + 1]) {
            into.remove(i);
        } else {
            i += 1;
        }
    }
}

impl<'a> AccountJson<'a> {
    /// A renderer for one dataset's accounts.
    pub fn new(
        ds: &'a Dataset,
        output_names: &'a [String],
        measure_names: &'a [String],
    ) -> AccountJson<'a> {
        let mut output_order = Vec::new();
        key_order(output_names.len(), |i| &output_names[i], &mut output_order);
        let mut measure_order = Vec::new();
        key_order(
            measure_names.len(),
            |i| &measure_names[i],
            &mut measure_order,
        );
        AccountJson {
            ds,
            output_names,
            measure_names,
            output_order,
            measure_order,
            actions: actions_index(ds),
        }
    }

    /// One account as it stands in the `accounts` array: on one line, compact (a diff of two
    /// runs shows one line per changed account; a million accounts stay 40 % smaller than
    /// indented), no separator.
    pub fn render(&self, r: &AccountResult) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(b"    ");
        self.write(&mut out, r);
        Ok(out)
    }

    /// One account's entry as a JSON value.
    pub fn value(&self, r: &AccountResult) -> Json {
        let mut out = Vec::new();
        self.write(&mut out, r);
        serde_json::from_slice(&out).unwrap_or(Json::Null)
    }

    fn write(&self, out: &mut Vec<u8>, r: &AccountResult) {
        let ds = self.ds;
        let a = &ds.accounts[r.index];
        let f = &r.facts;
        let mut order = Vec::new();
        out.extend_from_slice(b"{\"abc\":");
        string(out, f.abc);
        // The KAM's plan actions with their status, so the next run can say what was done
        // since.
        let actions = &self.actions[r.index];
        if !actions.is_empty() {
            out.extend_from_slice(b",\"actions\":[");
            separated(out, actions, |out, &i| {
                let p = &ds.plans[i as usize];
                out.extend_from_slice(b"{\"cell\":");
                cell(out, &p.origin.sheet, p.origin.row);
                out.extend_from_slice(b",\"status\":");
                text_or_null(out, p.status);
                out.extend_from_slice(b",\"text\":");
                string(out, &p.text);
                out.push(b'}');
            });
            out.push(b']');
        }
        out.extend_from_slice(b",\"band\":");
        string(out, &r.band);
        out.extend_from_slice(b",\"contributions\":[");
        separated(out, &r.contributions, |out, c| {
            contribution_json(out, c, &mut order)
        });
        out.extend_from_slice(b"],\"dependency\":");
        text_or_null(out, r.output(self.output_names, "dependency"));
        out.extend_from_slice(b",\"errors\":[");
        separated(out, &r.errors, |out, e| {
            out.extend_from_slice(b"{\"message\":");
            string(out, &e.message);
            out.extend_from_slice(b",\"rule\":");
            string(out, &e.rule);
            out.push(b'}');
        });
        out.extend_from_slice(b"],\"figures\":{\"gross_profit\":");
        number(out, a.gross_profit);
        out.extend_from_slice(b",\"revenue\":");
        number(out, a.revenue);
        out.extend_from_slice(b",\"source\":");
        string(out, a.figures_source);
        out.extend_from_slice(b",\"wallet\":");
        number(out, a.wallet);
        out.extend_from_slice(b"},\"id\":");
        string(out, &a.id);
        out.extend_from_slice(b",\"kam_id\":");
        text_or_null(out, a.kam_id.as_deref());
        out.extend_from_slice(b",\"key\":");
        boolean(out, r.key);
        out.extend_from_slice(b",\"labels\":[");
        separated(out, &r.labels, |out, l| string(out, l));
        out.extend_from_slice(b"],\"level\":");
        string(out, a.level);
        out.extend_from_slice(b",\"measures\":{");
        separated(out, &self.measure_order, |out, &i| {
            string(out, &self.measure_names[i]);
            out.push(b':');
            number(out, r.measures.get(i).copied().flatten());
        });
        out.extend_from_slice(b"},\"name\":");
        string(out, &a.name);
        out.extend_from_slice(b",\"outputs\":{");
        separated(out, &self.output_order, |out, &i| {
            string(out, &self.output_names[i]);
            out.push(b':');
            text_or_null(out, r.outputs.get(i).and_then(|x| x.as_deref()));
        });
        out.extend_from_slice(b"},\"pareto\":");
        boolean(out, f.abc == "A" && f.share.is_some());
        out.extend_from_slice(b",\"plan\":");
        boolean(out, r.plan);
        out.extend_from_slice(b",\"score\":");
        number(out, Some(r.score));
        out.extend_from_slice(b",\"shares\":{\"cum_share\":");
        number(out, f.cum_share);
        out.extend_from_slice(b",\"cum_share_before\":");
        number(out, f.cum_share_before);
        out.extend_from_slice(b",\"profit_share\":");
        number(out, f.profit_share);
        out.extend_from_slice(b",\"rank\":");
        out.extend_from_slice(f.rank.to_string().as_bytes());
        out.extend_from_slice(b",\"revenue_share\":");
        number(out, f.revenue_share);
        out.extend_from_slice(b",\"share\":");
        number(out, f.share);
        out.extend_from_slice(b"},\"source\":");
        cell(out, &a.origin.sheet, a.origin.row);
        out.push(b'}');
    }
}

/// One contribution, compact (`order` is scratch space).
fn contribution_json(out: &mut Vec<u8>, c: &Contribution, order: &mut Vec<usize>) {
    out.push(b'{');
    if !c.actions.is_empty() {
        out.extend_from_slice(b"\"actions\":[");
        separated(out, c.actions.iter(), |out, x| string(out, x));
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"cells\":[");
    separated(out, &c.cells, |out, x| string(out, x));
    out.extend_from_slice(b"],\"inputs\":{");
    key_order(c.inputs.len(), |i| &c.inputs[i].0, order);
    separated(out, order.iter(), |out, &i| {
        string(out, &c.inputs[i].0);
        out.push(b':');
        string(out, &c.inputs[i].1);
    });
    out.extend_from_slice(b"},\"kind\":");
    string(out, c.kind);
    if let Some(l) = &c.label {
        out.extend_from_slice(b",\"label\":");
        string(out, l);
    }
    out.extend_from_slice(b",\"outcome\":");
    string(out, c.outcome.as_str());
    if let Some((k, v)) = &c.output {
        out.extend_from_slice(b",\"output\":{");
        string(out, k);
        out.push(b':');
        string(out, v);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"points\":");
    number(out, Some(c.points));
    out.extend_from_slice(b",\"reason\":");
    string(out, &c.reason);
    out.extend_from_slice(b",\"rule\":");
    string(out, &c.rule);
    out.push(b'}');
}

/// Writes `scores.json` while the accounts are being scored: the accounts first (the
/// document's keys are in alphabetical order and `accounts` is the first), everything that
/// needs all of them once they are known. No account is held as JSON longer than it is written.
pub struct ScoresWriter<'w> {
    w: &'w mut (dyn std::io::Write + Send),
    count: usize,
}

impl<'w> ScoresWriter<'w> {
    /// Starts the document.
    pub fn begin(w: &'w mut (dyn std::io::Write + Send)) -> std::io::Result<ScoresWriter<'w>> {
        w.write_all(b"{\n  \"accounts\": [")?;
        Ok(ScoresWriter { w, count: 0 })
    }

    /// Writes one account made by [`AccountJson::render`].
    pub fn account(&mut self, rendered: &[u8]) -> std::io::Result<()> {
        self.w
            .write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
        self.w.write_all(rendered)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the rest of the document.
    pub fn finish(
        self,
        ds: &Dataset,
        s: &Scored,
        packs: &[(String, String)],
    ) -> std::io::Result<()> {
        self.w
            .write_all(if self.count == 0 { b"]" } else { b"\n  ]" })?;
        let mut head = scores_json_without_accounts(ds, s, packs, false);
        if let Some(m) = head.as_object_mut() {
            m.remove("accounts");
        }
        let text = serde_json::to_string_pretty(&head).map_err(std::io::Error::other)?;
        let text = text.strip_prefix("{\n").unwrap_or(&text);
        self.w.write_all(b",\n")?;
        // The KAMs are written one at a time where the placeholder stands.
        match (&s.managers, text.split_once(&format!("\"{KAMS_HERE}\""))) {
            (Some(m), Some((before, after))) => {
                self.w.write_all(before.as_bytes())?;
                if m.managers.is_empty() {
                    self.w.write_all(b"[]")?;
                } else {
                    self.w.write_all(b"[")?;
                    // KAMs are serialised a few at a time in parallel and written in order.
                    use rayon::prelude::*;
                    // Chunk i+1 is serialised while chunk i is written. Written buffers are
                    // kept for the next chunks: a fresh one for each KAM (hundreds of KiB)
                    // is memory the system must clear first.
                    let spare: std::sync::Mutex<Vec<Vec<u8>>> = Default::default();
                    let serialise = |chunk: &[ManagerResult]| -> Serialised {
                        chunk
                            .par_iter()
                            .map(|k| {
                                let rows: usize = k.metrics.iter().map(|x| x.evidence.len()).sum();
                                let mut out = spare
                                    .lock()
                                    .map(|mut s| s.pop())
                                    .ok()
                                    .flatten()
                                    .unwrap_or_default();
                                out.clear();
                                out.reserve(16_384 + 64 * rows);
                                let renderer = m.renderer(ds, &s.accounts, k);
                                write_manager(&mut out, ds, m, k, &renderer)?;
                                Ok(out)
                            })
                            .collect()
                    };
                    let write = |w: &mut (dyn std::io::Write + Send),
                                 texts: Serialised,
                                 first: bool|
                     -> std::io::Result<()> {
                        for (i, t) in texts.into_iter().enumerate() {
                            let t = t.map_err(std::io::Error::other)?;
                            w.write_all(if first && i == 0 {
                                b"\n      "
                            } else {
                                b",\n      "
                            })?;
                            w.write_all(&t)?;
                            if let Ok(mut s) = spare.lock() {
                                s.push(t);
                            }
                        }
                        Ok(())
                    };
                    let mut pending: Option<(Serialised, bool)> = None;
                    for (c, chunk) in m.managers.chunks(32).enumerate() {
                        let texts = match pending.take() {
                            None => serialise(chunk),
                            Some((prev, first)) => {
                                let w = &mut *self.w;
                                let (texts, wrote) =
                                    rayon::join(|| serialise(chunk), || write(w, prev, first));
                                wrote?;
                                texts
                            }
                        };
                        pending = Some((texts, c == 0));
                    }
                    if let Some((prev, first)) = pending {
                        write(self.w, prev, first)?;
                    }
                    self.w.write_all(b"\n    ]")?;
                }
                self.w.write_all(after.as_bytes())?;
            }
            _ => self.w.write_all(text.as_bytes())?,
        }
        self.w.write_all(b"\n")
    }
}

/// serde_json's pretty printing (two spaces) starting `level` levels deep, so that a part of
/// the document can be serialised on its own and written where it belongs.
struct IndentedFormatter {
    level: usize,
    has_value: bool,
    /// Objects and arrays this deep are written on one line.
    compact_from: usize,
    /// The items of arrays under these keys are written one per line.
    one_per_line: &'static [&'static str],
    /// The key being written, and the last key written.
    in_key: bool,
    key: Vec<u8>,
}

impl IndentedFormatter {
    fn new(level: usize, one_per_line: &'static [&'static str]) -> Self {
        IndentedFormatter {
            level,
            has_value: false,
            compact_from: usize::MAX,
            one_per_line,
            in_key: false,
            key: Vec::new(),
        }
    }
    fn indent<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl IndentedFormatter {
    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        if c == b"["
            && self.compact_from == usize::MAX
            && self
                .one_per_line
                .iter()
                .any(|k| k.as_bytes() == self.key.as_slice())
        {
            self.compact_from = self.level + 1;
        }
        w.write_all(c)
    }
    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        let compact = self.level >= self.compact_from;
        if self.level + 1 == self.compact_from {
            self.compact_from = usize::MAX;
        }
        self.level -= 1;
        if self.has_value && !compact {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(c)
    }
    fn item<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if self.level >= self.compact_from {
            return w.write_all(if first { b"" } else { b", " });
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl serde_json::ser::Formatter for IndentedFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.in_key = true;
        self.key.clear();
        self.item(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.in_key = false;
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if self.in_key {
            self.key.extend_from_slice(fragment.as_bytes());
        }
        w.write_all(fragment.as_bytes())
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// KAMs serialised on their own, in order.
type Serialised = Vec<Result<Vec<u8>, serde_json::Error>>;

/// Stands for the KAM list while the rest of the document is serialised.
const KAMS_HERE: &str = "@@kam-list@@";

/// Writes the whole document for an already scored dataset.
pub fn write_scores_json(
    w: &mut (dyn std::io::Write + Send),
    ds: &Dataset,
    s: &Scored,
    packs: &[(String, String)],
) -> std::io::Result<()> {
    let mut out = ScoresWriter::begin(w)?;
    let json = AccountJson::new(ds, &s.output_names, &s.measure_names);
    for r in &s.accounts {
        out.account(&json.render(r)?)?;
    }
    out.finish(ds, s, packs)
}

/// The whole document as one JSON value (small workbooks, tests).
pub fn scores_json(ds: &Dataset, s: &Scored, packs: &[(String, String)]) -> Json {
    let mut doc = scores_json_without_accounts(ds, s, packs, true);
    let json = AccountJson::new(ds, &s.output_names, &s.measure_names);
    doc["accounts"] = Json::Array(s.accounts.iter().map(|r| json.value(r)).collect());
    doc
}

fn scores_json_without_accounts(
    ds: &Dataset,
    s: &Scored,
    packs: &[(String, String)],
    with_kams: bool,
) -> Json {
    json!({
        "schema": SCHEMA,
        "kam_version": env!("CARGO_PKG_VERSION"),
        "file": ds.file,
        "packs": packs.iter().map(|(n, f)| json!({ "pack": n, "file": f })).collect::<Vec<_>>(),
        "params": s.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
        "portfolio": portfolio_json(s),
        "bands": band_counts(s),
        "accounts": [],
        "kams": s.kams.iter().map(|k| json!({
            "kam_id": k.kam_id,
            "accounts": k.accounts,
            "key_accounts": k.key_accounts,
            "key_accounts_all_levels": k.key_accounts_all_levels,
            "flags": k.flags.iter().map(flag).collect::<Vec<_>>(),
            "errors": k.errors.iter().map(|e| json!({ "rule": e.rule.as_ref(), "message": e.message })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "errors": s.error_count(),
        "managers": s.managers.as_ref().map(|m| managers_json(ds, &s.accounts, m, with_kams)),
    })
}

/// The `portfolio` section: totals, concentration, cut-offs, warnings and flags.
pub fn portfolio_json(s: &Scored) -> Json {
    let p = &s.portfolio;
    json!({
        "basis": p.basis,
        "accounts": p.accounts,
        "total_gross_profit": round9(p.total_gross_profit),
        "total_revenue": round9(p.total_revenue),
        "hhi": num(p.hhi),
        "hhi_10000": num(p.hhi.map(|h| h * 10_000.0)),
        "top1_share": num(p.top1_share),
        "top5_share": num(p.top5_share),
        "pareto_accounts": p.pareto_accounts,
        "a_cutoff": p.a_cutoff,
        "b_cutoff": p.b_cutoff,
        "key_accounts": s.accounts.iter().filter(|a| a.key).count(),
        "warnings": p.warnings,
        "flags": s.portfolio_flags.iter().map(flag).collect::<Vec<_>>(),
    })
}

/// The `managers` section: the KAM pack's results per KAM, ranked (`with_kams: false` leaves a
/// placeholder for the KAM list, which is then written one KAM at a time).
pub fn managers_json(
    ds: &Dataset,
    accounts: &[AccountResult],
    m: &KamScored,
    with_kams: bool,
) -> Json {
    let p = &m.period;
    let date = |d: Option<f64>| d.map(format_date);
    let mut ranking: Vec<&ManagerResult> = m.managers.iter().collect();
    ranking.sort_by_key(|k| k.rank);
    json!({
        "period": {
            "label": p.label,
            "chosen": p.source,
            "start": date(p.start),
            "end": date(p.end),
            "previous_start": date(p.previous.map(|x| x.0)),
            "previous_end": date(p.previous.map(|x| x.1)),
            "as_of": date(p.as_of),
        },
        "ranking": ranking.iter().map(|k| k.kam_id.as_str()).collect::<Vec<_>>(),
        "kams": if with_kams {
            Json::Array(m.managers.iter().map(|k| manager_json(ds, accounts, m, k)).collect())
        } else {
            json!(KAMS_HERE)
        },
    })
}

/// Writes one KAM of the `managers` section at its place in the document (the KAM list is
/// three levels deep), byte for byte as serde_json's pretty printing with [`IndentedFormatter`]
/// lays it out. The large parts (evidence rows, dossiers, pay lines: hundreds of thousands of
/// lines in a big run) are written straight from the results, one per line; the small parts go
/// through serde_json.
fn write_manager(
    out: &mut Vec<u8>,
    ds: &Dataset,
    m: &KamScored,
    k: &ManagerResult,
    renderer: &crate::score::kams::Renderer<'_>,
) -> serde_json::Result<()> {
    use crate::score::Outcome;
    use std::fmt::Write as _;
    const ONE_PER_LINE: &[&str] = &["evidence", "dossier", "deals"];
    let v = &k.verdict;
    // A value under a key of the KAM object (level 4) or deeper.
    let value = |out: &mut Vec<u8>, level: usize, x: &Json| -> serde_json::Result<()> {
        let fmt = IndentedFormatter::new(level, ONE_PER_LINE);
        x.serialize(&mut serde_json::Serializer::with_formatter(out, fmt))
    };
    let mut text = String::new();
    out.push(b'{');
    key(out, 4, "activities", true);
    value(
        out,
        4,
        &json!({
            "in_period": k.activities_in_period,
            "outside_period": k.activities_outside_period,
            "tenders_outside_period": k.tenders_outside_period,
        }),
    )?;
    key(out, 4, "band", false);
    string(out, &v.band);
    key(out, 4, "contributions", false);
    value(
        out,
        4,
        &Json::Array(v.contributions.iter().map(contribution).collect()),
    )?;
    key(out, 4, "dossier", false);
    // The entries' accounts and contacts are scattered over the dataset: asked for ahead.
    let mut prefetch = m.dossier_prefetcher(ds, k.dossier.iter().map(|d| d.account));
    lines(out, 4, &k.dossier, |out, d| {
        prefetch();
        let a = &ds.accounts[d.account];
        out.extend_from_slice(b"{\"account\": ");
        string(out, m.account_id(ds, d.account));
        out.extend_from_slice(b", \"cell\": ");
        cell(out, &a.origin.sheet, a.origin.row);
        out.extend_from_slice(b", \"completeness\": ");
        number(out, d.completeness);
        out.extend_from_slice(b", \"gaps\": [");
        for (i, g) in m.dossier_gap_list(ds, d.account).enumerate() {
            out.extend_from_slice(if i > 0 { b", \"" } else { b"\"" });
            let _ = g.write_pieces(&mut JsonText(out));
            out.push(b'"');
        }
        out.extend_from_slice(b"]}");
    });
    key(out, 4, "errors", false);
    value(
        out,
        4,
        &Json::Array(
            v.errors
                .iter()
                .map(|e| json!({ "rule": e.rule.as_ref(), "message": e.message }))
                .collect(),
        ),
    )?;
    key(out, 4, "kam_id", false);
    string(out, &k.kam_id);
    key(out, 4, "labels", false);
    value(out, 4, &json!(v.labels))?;
    key(out, 4, "level", false);
    value(
        out,
        4,
        &json!({
            "recorded": k.level,
            "suggested": k.output(&m.output_names, "suggested_level"),
            "style": k.output(&m.output_names, "style"),
        }),
    )?;
    key(out, 4, "measures", false);
    value(
        out,
        4,
        &Json::Object(
            m.measure_names
                .iter()
                .zip(&v.measures)
                .map(|(n, x)| (n.clone(), num(*x)))
                .collect(),
        ),
    )?;
    // Metrics by id, like every object of the document.
    key(out, 4, "metrics", false);
    let mut order = Vec::new();
    let n = m.metric_ids.len().min(k.metrics.len());
    key_order(n, |i| &m.metric_ids[i], &mut order);
    if order.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        out.push(b'{');
        for (n, &mi) in order.iter().enumerate() {
            let mv = &k.metrics[mi];
            key(out, 5, &m.metric_ids[mi], n == 0);
            out.push(b'{');
            key(out, 6, "evidence", true);
            lines(out, 6, &mv.evidence, |out, e| {
                out.extend_from_slice(b"{\"account\": ");
                string(out, m.account_id(ds, e.account as usize));
                out.extend_from_slice(b", \"cell\": ");
                let (sheet, line) = m.sheet_name(ds, e);
                cell(out, sheet, line);
                if m.traced {
                    out.extend_from_slice(b", \"reason\": ");
                    text.clear();
                    let _ = write!(text, "{}", renderer.display(mi, e));
                    string(out, &text);
                }
                out.push(b'}');
            });
            key(out, 6, "not_known_rows", false);
            out.extend_from_slice(mv.unknown.to_string().as_bytes());
            key(out, 6, "over", false);
            string(out, m.metric_sources[mi]);
            key(out, 6, "rows", false);
            out.extend_from_slice(mv.rows.to_string().as_bytes());
            key(out, 6, "value", false);
            value(out, 6, &num(mv.value))?;
            close(out, 5, b'}');
        }
        close(out, 4, b'}');
    }
    key(out, 4, "mistakes", false);
    value(
        out,
        4,
        &Json::Array(
            k.mistakes
                .iter()
                .map(|x| {
                    json!({
                        "id": x.id,
                        "title": x.title,
                        "status": match x.outcome {
                            Outcome::Matched => "observed",
                            Outcome::NotMatched => "not observed",
                            Outcome::NotKnown => "not known",
                            Outcome::Error => "error",
                        },
                        "reason": x.reason,
                        "inputs": x.inputs.iter().map(|(n, val)| (n.to_string(), json!(val))).collect::<Map<_, _>>(),
                        "evidence": x.evidence.iter().map(|&i| m.metric_ids[i].as_str()).collect::<Vec<_>>(),
                        "evidence_rows": x.evidence.iter().map(|&i| k.metrics[i].evidence.len()).sum::<usize>(),
                    })
                })
                .collect(),
        ),
    )?;
    key(out, 4, "name", false);
    value(out, 4, &json!(k.name))?;
    key(out, 4, "outputs", false);
    value(
        out,
        4,
        &Json::Object(
            m.output_names
                .iter()
                .zip(&v.outputs)
                .map(|(n, x)| (n.clone(), json!(x.as_deref())))
                .collect(),
        ),
    )?;
    key(out, 4, "pay", false);
    out.push(b'{');
    key(out, 5, "deals", true);
    lines(out, 5, &k.pay, |out, l| {
        out.extend_from_slice(b"{\"account\": ");
        string(out, m.account_id(ds, l.row.account as usize));
        out.extend_from_slice(b", \"base\": ");
        number(out, l.base);
        out.extend_from_slice(b", \"cell\": ");
        let (sheet, line) = m.sheet_name(ds, &l.row);
        cell(out, sheet, line);
        out.extend_from_slice(b", \"date\": ");
        text_or_null(out, l.date.map(format_date).as_deref());
        out.extend_from_slice(b", \"pay\": ");
        number(out, l.amount);
        out.extend_from_slice(b", \"rate\": ");
        number(out, l.rate);
        out.extend_from_slice(b", \"reason\": ");
        string(out, &l.reason);
        out.extend_from_slice(b", \"rule\": ");
        text_or_null(out, l.rule.as_deref());
        out.push(b'}');
    });
    key(out, 5, "not_known_deals", false);
    let not_known = k.pay.iter().filter(|l| l.amount.is_none()).count();
    out.extend_from_slice(not_known.to_string().as_bytes());
    key(out, 5, "total", false);
    number(out, k.pay_total);
    close(out, 4, b'}');
    key(out, 4, "rank", false);
    out.extend_from_slice(k.rank.to_string().as_bytes());
    key(out, 4, "score", false);
    value(out, 4, &json!(round9(v.score)))?;
    key(out, 4, "source", false);
    value(out, 4, &json!(k.origin.as_ref().map(|o| o.cell(0))))?;
    close(out, 3, b'}');
    Ok(())
}

/// `"key": ` on its own line at `level`, after a comma unless it is the object's first key.
fn key(out: &mut Vec<u8>, level: usize, name: &str, first: bool) {
    out.extend_from_slice(if first { b"\n" } else { b",\n" });
    out.resize(out.len() + 2 * level, b' ');
    string(out, name);
    out.extend_from_slice(b": ");
}

/// Closes an object or array whose lines are at `level + 1`.
fn close(out: &mut Vec<u8>, level: usize, c: u8) {
    out.push(b'\n');
    out.resize(out.len() + 2 * level, b' ');
    out.push(c);
}

/// An array under a key at `level`, one item per line (`[]` when empty).
fn lines<T>(out: &mut Vec<u8>, level: usize, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        out.resize(out.len() + 2 * (level + 1), b' ');
        item(out, x);
    }
    close(out, level, b']');
}

/// Items separated by commas (the brackets are the caller's).
fn separated<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    for (n, x) in items.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        item(out, x);
    }
}

/// A JSON string, or `null` when there is no text.
fn text_or_null(out: &mut Vec<u8>, x: Option<&str>) {
    match x {
        Some(t) => string(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

/// `true` or `false`.
fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// The inside of a JSON string, escaped byte for byte as serde_json escapes it: `"` and `\`,
/// the short escapes of backspace, form feed, newline, return and tab, `\u00XX` for the other
/// control characters, everything else as it is.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    // Eight bytes at a time while none needs escaping (the usual case): a byte below 0x20,
    // or equal to `"` or `\\`, shows as a high bit (the bit tricks of "bit twiddling hacks";
    // they may flag the wrong byte of a word, never miss one, so flagged words go byte by
    // byte).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut clean = 0;
    while clean + 8 <= bytes.len() {
        let w = u64::from_le_bytes(bytes[clean..clean + 8].try_into().expect("eight bytes"));
        let flagged = (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')));
        if flagged != 0 {
            break;
        }
        clean += 8;
    }
    if clean == bytes.len() {
        out.extend_from_slice(bytes);
        return;
    }
    // From the first word that may need it, byte by byte.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        if !needs(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Text written through `std::fmt::Write` lands escaped inside a JSON string.
struct JsonText<'o>(&'o mut Vec<u8>);

impl std::fmt::Write for JsonText<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// A number as `scores.json` writes it: rounded to 9 decimals, `null` when not known.
fn number(out: &mut Vec<u8>, x: Option<f64>) {
    match x {
        Some(v) if v.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, &round9(v));
        }
        _ => out.extend_from_slice(b"null"),
    }
}

/// A row's first cell as a JSON string (`"Activities!A17"`), without building a `String` for
/// the usual sheet names.
fn cell(out: &mut Vec<u8>, sheet: &str, row: u32) {
    if sheet
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        out.push(b'"');
        out.extend_from_slice(sheet.as_bytes());
        out.extend_from_slice(b"!A");
        let mut digits = [0u8; 10];
        let mut n = row;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[i..]);
        out.push(b'"');
    } else {
        let o = crate::model::Origin {
            sheet: sheet.into(),
            row,
        };
        string(out, &crate::model::RowCell(&o).to_string());
    }
}

fn manager_json(
    ds: &Dataset,
    accounts: &[AccountResult],
    m: &KamScored,
    k: &ManagerResult,
) -> Json {
    let renderer = m.renderer(ds, accounts, k);
    let mut out = Vec::new();
    write_manager(&mut out, ds, m, k, &renderer)
        .and_then(|()| serde_json::from_slice(&out))
        .unwrap_or(Json::Null)
}

fn band_counts(s: &Scored) -> Json {
    let mut order: Vec<String> = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for a in &s.accounts {
        if !order.contains(&a.band) {
            order.push(a.band.clone());
        }
        *counts.entry(a.band.clone()).or_default() += 1;
    }
    Json::Object(counts.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_repeated_input_keeps_its_last_value_like_a_json_object() {
        let c = Contribution {
            rule: Arc::from("r"),
            kind: "criterion",
            outcome: crate::score::Outcome::Matched,
            points: 1.0,
            label: None,
            output: None,
            reason: "why \"quoted\"".into(),
            inputs: vec![
                (Arc::from("share"), "0.1".into()),
                (Arc::from("gp"), "5".into()),
                (Arc::from("share"), "0.2".into()),
            ],
            cells: vec!["'Sales 2026'!A2".into()],
            actions: Arc::from(Vec::new()),
        };
        let mut out = Vec::new();
        contribution_json(&mut out, &c, &mut Vec::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"cells":["'Sales 2026'!A2"],"inputs":{"gp":"5","share":"0.2"},"kind":"criterion","outcome":"matched","points":1.0,"reason":"why \"quoted\"","rule":"r"}"#
        );
    }

    #[test]
    fn strings_are_escaped_byte_for_byte_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u32..0x80)
            .map(|c| format!("a{}b", char::from_u32(c).unwrap()))
            .collect();
        samples.extend(
            [
                "",
                "plain",
                "\"quoted\" \\ back",
                "Ünïcödé – 日本 \u{7f}\u{2028}",
                "\n\n\u{1}",
            ]
            .map(String::from),
        );
        // Long enough for the eight-bytes-at-a-time scan: each special character at every
        // position, and bytes just around the ones that need escaping.
        for c in [
            '\u{0}', '\u{1f}', ' ', '!', '"', '#', '[', '\\', ']', '\u{7f}', 'é', '\n',
        ] {
            for at in 0..20 {
                let mut text = "x".repeat(19);
                text.insert(at, c);
                samples.push(text);
            }
        }
        for text in samples {
            let mut ours = Vec::new();
            string(&mut ours, &text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
            let mut pieces = b"\"".to_vec();
            let mut w = JsonText(&mut pieces);
            for part in text.split_inclusive('b') {
                std::fmt::Write::write_str(&mut w, part).unwrap();
            }
            pieces.push(b'"');
            assert_eq!(pieces, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn cells_are_quoted_like_excel_when_the_sheet_needs_it() {
        let text = |sheet: &str| {
            let mut out = Vec::new();
            cell(&mut out, sheet, 17);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text("Activities"), r#""Activities!A17""#);
        assert_eq!(text("Активности"), r#""Активности!A17""#);
        assert_eq!(
            text("[north.xlsx]Tenders"),
            r#""'[north.xlsx]Tenders'!A17""#
        );
        assert_eq!(text("Bob's \"log\""), r#""'Bob''s \"log\"'!A17""#);
    }

    #[test]
    fn streamed_and_whole_documents_are_the_same() {
        let ds = crate::import::import_bytes("s.xlsx", crate::SAMPLE_WORKBOOK, &Default::default())
            .unwrap();
        let rules = crate::rules::load(None, &[]).unwrap();
        let engine = crate::score::Engine::new(&rules, &ds.account_extras.names).unwrap();
        let mut scored = engine.score(&ds, 1, false).unwrap();
        let kams = crate::score::kams::KamEngine::new(&rules, &ds)
            .unwrap()
            .unwrap();
        scored.managers = Some(kams.score(&ds, &scored.accounts, 1, true, None).unwrap());
        let mut streamed = Vec::new();
        write_scores_json(&mut streamed, &ds, &scored, &[]).unwrap();
        let whole = scores_json(&ds, &scored, &[]);
        let parsed: Json =
            serde_json::from_slice(&streamed).expect("the streamed document is JSON");
        assert_eq!(parsed, whole);
        // Evidence rows are written one per line, and so is each account.
        let text = String::from_utf8(streamed).unwrap();
        assert!(
            text.contains("\n    {\"abc\":\"A\",\"actions\":[{\"cell\":\"Plans!A6\""),
            "{}",
            &text[..300]
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("    {\"abc\":"))
                .count(),
            ds.accounts.len()
        );
        assert!(
            text.contains("{\"account\": \"A01\", \"cell\": \"Activities!A2\", \"reason\": \"25 minutes late to the meeting with Caspian Steel JSC on 2026-03-10 (more than 10)\"}"),
            "{}",
            &text[text.find("late_meetings").unwrap_or(0)..][..400]
        );
        // And with no account at all.
        let empty = crate::score::Scored {
            accounts: Vec::new(),
            ..scored
        };
        let mut streamed = Vec::new();
        write_scores_json(&mut streamed, &ds, &empty, &[]).unwrap();
        let parsed: Json = serde_json::from_slice(&streamed).expect("JSON");
        assert_eq!(parsed, scores_json(&ds, &empty, &[]));
    }
}
