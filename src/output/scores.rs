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
    let mut m = Map::new();
    m.insert("rule".into(), json!(c.rule.as_ref()));
    m.insert("kind".into(), json!(c.kind));
    m.insert("outcome".into(), json!(c.outcome.as_str()));
    m.insert("points".into(), json!(round9(c.points)));
    if let Some(l) = &c.label {
        m.insert("label".into(), json!(l));
    }
    if let Some((k, v)) = &c.output {
        m.insert("output".into(), json!({ k: v }));
    }
    m.insert("reason".into(), json!(c.reason));
    m.insert(
        "inputs".into(),
        Json::Object(
            c.inputs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        ),
    );
    m.insert("cells".into(), json!(c.cells));
    if !c.actions.is_empty() {
        m.insert("actions".into(), json!(c.actions.as_ref()));
    }
    Json::Object(m)
}

fn flag(f: &Flag) -> Json {
    json!({ "check": f.check, "flag": f.flag, "reason": f.reason, "actions": f.actions })
}

/// One account's entry.
pub fn account_json(
    ds: &Dataset,
    output_names: &[String],
    measure_names: &[String],
    r: &AccountResult,
    actions: &[u32],
) -> Json {
    let a = &ds.accounts[r.index];
    let f = &r.facts;
    let mut doc = json!({
        "id": a.id,
        "name": a.name,
        "kam_id": a.kam_id,
        "level": a.level,
        "score": round9(r.score),
        "band": r.band,
        "key": r.key,
        "plan": r.plan,
        "labels": r.labels,
        "outputs": output_names.iter().zip(&r.outputs).map(|(k, v)| (k.clone(), json!(v.as_deref()))).collect::<Map<_, _>>(),
        "dependency": r.output(output_names, "dependency"),
        "abc": f.abc,
        "pareto": f.abc == "A" && f.share.is_some(),
        "shares": {
            "share": num(f.share),
            "profit_share": num(f.profit_share),
            "revenue_share": num(f.revenue_share),
            "rank": f.rank,
            "cum_share_before": num(f.cum_share_before),
            "cum_share": num(f.cum_share),
        },
        "figures": {
            "revenue": num(a.revenue),
            "gross_profit": num(a.gross_profit),
            "wallet": num(a.wallet),
            "source": a.figures_source,
        },
        "measures": measure_names.iter().zip(&r.measures).map(|(k, v)| (k.clone(), num(*v))).collect::<Map<_, _>>(),
        "contributions": r.contributions.iter().map(contribution).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|e| json!({ "rule": e.rule.as_ref(), "message": e.message })).collect::<Vec<_>>(),
        "source": a.origin.cell(0),
    });
    // The KAM's plan actions with their status, so the next run can say what was done since.
    if !actions.is_empty()
        && let Some(m) = doc.as_object_mut()
    {
        m.insert(
            "actions".into(),
            actions
                .iter()
                .map(|&i| {
                    let p = &ds.plans[i as usize];
                    json!({ "text": p.text, "status": p.status, "cell": p.origin.cell(0) })
                })
                .collect(),
        );
    }
    doc
}

/// The plan actions of each account (indexes into `ds.plans`), for [`account_json`].
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
/// turned into JSON on the thread that scored it.
pub struct AccountJson<'a> {
    ds: &'a Dataset,
    output_names: &'a [String],
    measure_names: &'a [String],
    actions: Vec<Vec<u32>>,
}

impl<'a> AccountJson<'a> {
    /// A renderer for one dataset's accounts.
    pub fn new(
        ds: &'a Dataset,
        output_names: &'a [String],
        measure_names: &'a [String],
    ) -> AccountJson<'a> {
        AccountJson {
            ds,
            output_names,
            measure_names,
            actions: actions_index(ds),
        }
    }

    /// One account as it stands in the `accounts` array: on one line, compact (a diff of two
    /// runs shows one line per changed account; a million accounts stay 40 % smaller than
    /// indented), no separator.
    pub fn render(&self, r: &AccountResult) -> std::io::Result<Vec<u8>> {
        let value = account_json(
            self.ds,
            self.output_names,
            self.measure_names,
            r,
            &self.actions[r.index],
        );
        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(b"    ");
        serde_json::to_writer(&mut out, &value).map_err(std::io::Error::other)?;
        Ok(out)
    }
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
                    // Chunk i+1 is serialised while chunk i is written.
                    let serialise = |chunk: &[ManagerResult]| -> Serialised {
                        chunk
                            .par_iter()
                            .map(|k| {
                                let rows: usize = k.metrics.iter().map(|x| x.evidence.len()).sum();
                                let mut out = Vec::with_capacity(16_384 + 192 * rows);
                                // Evidence rows, dossiers and pay lines one per line.
                                let fmt =
                                    IndentedFormatter::new(3, &["evidence", "dossier", "deals"]);
                                let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
                                let renderer = m.renderer(ds, &s.accounts, k);
                                manager_view(ds, m, k, &renderer).serialize(&mut ser)?;
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
    let actions = actions_index(ds);
    doc["accounts"] = Json::Array(
        s.accounts
            .iter()
            .map(|r| account_json(ds, &s.output_names, &s.measure_names, r, &actions[r.index]))
            .collect(),
    );
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

/// One row of evidence as written; the cell and the finding are written straight into the
/// output.
#[derive(Serialize)]
struct EvidenceView<'a> {
    account: &'a str,
    cell: Shown<crate::model::RowCell<'a>>,
    /// The row's finding, with `--trace` (the reviews and `kam explain --kam` always show it).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Shown<crate::score::kams::ReasonDisplay<'a, 'a>>>,
}

/// Serialises anything printable as a JSON string, without an intermediate `String`.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A number as `scores.json` writes it: rounded to 9 decimals, `null` when not known.
struct Num(Option<f64>);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) if v.is_finite() => s.serialize_f64(round9(v)),
            _ => s.serialize_none(),
        }
    }
}

/// One account's dossier as written.
#[derive(Serialize)]
struct DossierView<'a> {
    account: &'a str,
    cell: Shown<crate::model::RowCell<'a>>,
    completeness: Num,
    gaps: GapsView<'a>,
}

/// An account's dossier gaps as written, each printed straight into the output.
struct GapsView<'a> {
    m: &'a KamScored,
    ds: &'a Dataset,
    account: usize,
}

impl Serialize for GapsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let len = self.m.dossier_gap_list(self.ds, self.account).count();
        let mut seq = s.serialize_seq(Some(len))?;
        for g in self.m.dossier_gap_list(self.ds, self.account) {
            seq.serialize_element(&Shown(g))?;
        }
        seq.end()
    }
}

/// A KAM's pay as written.
#[derive(Serialize)]
struct PayView<'a> {
    deals: Vec<DealView<'a>>,
    not_known_deals: usize,
    total: Num,
}

/// One deal's pay as written.
#[derive(Serialize)]
struct DealView<'a> {
    account: &'a str,
    base: Num,
    cell: Shown<crate::model::RowCell<'a>>,
    date: Option<String>,
    pay: Num,
    rate: Num,
    reason: &'a str,
    rule: Option<&'a str>,
}

/// One metric as written.
#[derive(Serialize)]
struct MetricView<'a> {
    evidence: Vec<EvidenceView<'a>>,
    not_known_rows: u32,
    over: &'a str,
    rows: u32,
    value: Json,
}

/// One KAM as written: fields in alphabetical order, like every object of the document; the
/// evidence rows are serialised straight from the results, without an intermediate JSON tree.
#[derive(Serialize)]
struct ManagerView<'a> {
    activities: Json,
    band: &'a str,
    contributions: Json,
    dossier: Vec<DossierView<'a>>,
    errors: Json,
    kam_id: &'a str,
    labels: &'a [String],
    level: Json,
    measures: Json,
    metrics: std::collections::BTreeMap<&'a str, MetricView<'a>>,
    mistakes: Json,
    name: Option<&'a str>,
    outputs: Json,
    pay: PayView<'a>,
    rank: usize,
    score: f64,
    source: Option<String>,
}

fn manager_view<'a>(
    ds: &'a Dataset,
    m: &'a KamScored,
    k: &'a ManagerResult,
    renderer: &'a crate::score::kams::Renderer<'a>,
) -> ManagerView<'a> {
    use crate::score::Outcome;
    let v = &k.verdict;
    ManagerView {
        activities: json!({
            "in_period": k.activities_in_period,
            "outside_period": k.activities_outside_period,
            "tenders_outside_period": k.tenders_outside_period,
        }),
        band: &v.band,
        contributions: Json::Array(v.contributions.iter().map(contribution).collect()),
        dossier: k
            .dossier
            .iter()
            .map(|d| DossierView {
                account: &ds.accounts[d.account].id,
                cell: Shown(crate::model::RowCell(&ds.accounts[d.account].origin)),
                completeness: Num(d.completeness),
                gaps: GapsView {
                    m,
                    ds,
                    account: d.account,
                },
            })
            .collect(),
        errors: Json::Array(v.errors.iter().map(|e| json!({ "rule": e.rule.as_ref(), "message": e.message })).collect()),
        kam_id: &k.kam_id,
        labels: &v.labels,
        level: json!({
            "recorded": k.level,
            "suggested": k.output(&m.output_names, "suggested_level"),
            "style": k.output(&m.output_names, "style"),
        }),
        measures: Json::Object(m.measure_names.iter().zip(&v.measures).map(|(n, x)| (n.clone(), num(*x))).collect()),
        metrics: m
            .metric_ids
            .iter()
            .zip(&m.metric_sources)
            .zip(&k.metrics)
            .enumerate()
            .map(|(mi, ((id, over), mv))| {
                (
                    id.as_str(),
                    MetricView {
                        evidence: mv
                            .evidence
                            .iter()
                            .map(|e| EvidenceView {
                                account: e.account(ds),
                                cell: Shown(crate::model::RowCell(e.origin(ds))),
                                reason: m.traced.then(|| Shown(renderer.display(mi, e))),
                            })
                            .collect(),
                        not_known_rows: mv.unknown,
                        over,
                        rows: mv.rows,
                        value: num(mv.value),
                    },
                )
            })
            .collect(),
        mistakes: Json::Array(k.mistakes.iter().map(|x| json!({
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
        })).collect()),
        name: k.name.as_deref(),
        outputs: Json::Object(m.output_names.iter().zip(&v.outputs).map(|(n, x)| (n.clone(), json!(x.as_deref()))).collect()),
        pay: PayView {
            deals: k
                .pay
                .iter()
                .map(|l| DealView {
                    account: l.row.account(ds),
                    base: Num(l.base),
                    cell: Shown(crate::model::RowCell(l.row.origin(ds))),
                    date: l.date.map(format_date),
                    pay: Num(l.amount),
                    rate: Num(l.rate),
                    reason: &l.reason,
                    rule: l.rule.as_deref(),
                })
                .collect(),
            not_known_deals: k.pay.iter().filter(|l| l.amount.is_none()).count(),
            total: Num(k.pay_total),
        },
        rank: k.rank,
        score: round9(v.score),
        source: k.origin.as_ref().map(|o| o.cell(0)),
    }
}

fn manager_json(
    ds: &Dataset,
    accounts: &[AccountResult],
    m: &KamScored,
    k: &ManagerResult,
) -> Json {
    let renderer = m.renderer(ds, accounts, k);
    serde_json::to_value(manager_view(ds, m, k, &renderer)).unwrap_or(Json::Null)
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
