//! The Lua sandbox for rule plugins.
//!
//! - Only the `table`, `string`, `math` and `utf8` libraries; no `io`, `os`, `package`,
//!   `debug` or `coroutine`; `load`, `loadstring`, `dofile`, `loadfile`, `collectgarbage`,
//!   `rawset`, `print` and `string.dump` are removed. `require(name)` loads `name.lua` from the
//!   rules folder only.
//! - The standard library tables are read-only and the string metatable is locked, so a script
//!   cannot change them for the next account.
//! - Every call runs the pack's chunks afresh in a new environment: globals and upvalues never
//!   carry over from one account to the next.
//! - An instruction budget and a wall-clock time budget per call (both checked by a count
//!   hook every 1000 instructions) and a memory limit per VM. `pcall` and
//!   `xpcall` are replaced by versions that cannot catch a budget or memory error, so a
//!   `pcall` loop cannot escape them.
//!
//! The API a script sees is documented in `docs/lua.md`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::Limits;
use crate::expr::V;

/// What a criterion function returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LuaVerdict {
    /// Matched.
    pub matched: bool,
    /// Points, overriding the pack's.
    pub points: Option<f64>,
    /// Label, overriding the pack's.
    pub label: Option<String>,
    /// Reason, overriding the pack's template.
    pub reason: Option<String>,
    /// Actions, overriding the pack's.
    pub actions: Option<Vec<String>>,
}

/// A sandboxed Lua VM holding a rule set's compiled chunks.
pub struct LuaVm {
    lua: Lua,
    chunks: Vec<Function>,
    require: Function,
    used: Rc<Cell<u64>>,
    deadline: Rc<Cell<Instant>>,
    limits_time_ms: u64,
    aborted: Rc<Cell<bool>>,
    base_meta: Table,
    ctx: Option<Table>,
    key_index: std::collections::HashMap<String, usize>,
}

/// The first line of the root cause of a Lua error (no traceback).
pub fn error_message(e: &mlua::Error) -> String {
    let mut e = e;
    while let mlua::Error::CallbackError { cause, .. } = e {
        e = cause;
    }
    let text = match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(_) => "memory limit exceeded".to_string(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or("").to_string()
}

fn is_memory_error(e: &mlua::Error) -> bool {
    let mut e = e;
    while let mlua::Error::CallbackError { cause, .. } = e {
        e = cause;
    }
    matches!(e, mlua::Error::MemoryError(_))
}

const READ_ONLY: &str = r#"
local function read_only(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error(name .. " is read-only in kam rules (tried to set " .. tostring(k) .. ")", 2) end,
    __metatable = false,
  })
end
return read_only
"#;

impl LuaVm {
    /// Builds a VM and compiles every Lua source (display path, text) of the rule set. Syntax
    /// errors come back as `path:line: message`.
    pub fn new(sources: &[(String, String)], limits: Limits) -> Result<LuaVm, String> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8,
            LuaOptions::default(),
        )
        .map_err(|e| format!("cannot start Lua: {e}"))?;
        let used = Rc::new(Cell::new(0u64));
        let aborted = Rc::new(Cell::new(false));
        let deadline = Rc::new(Cell::new(Instant::now()));
        let setup = || -> mlua::Result<Table> {
            let g = lua.globals();
            // Lock the string metatable before anything untrusted runs.
            lua.load("getmetatable('').__metatable = false")
                .set_name("=kam")
                .exec()?;
            for name in [
                "load",
                "loadstring",
                "dofile",
                "loadfile",
                "require",
                "collectgarbage",
                "rawset",
                "print",
                "module",
            ] {
                g.raw_set(name, Value::Nil)?;
            }
            let string: Table = g.get("string")?;
            string.raw_set("dump", Value::Nil)?;
            // pcall/xpcall that cannot swallow a budget or memory error.
            let ab = aborted.clone();
            let pcall = lua.create_function(move |lua, (f, args): (Function, MultiValue)| {
                let (ok, mut out) = protected(lua, &ab, &f, args)?;
                out.push_front(Value::Boolean(ok));
                Ok(out)
            })?;
            let ab = aborted.clone();
            let xpcall = lua.create_function(
                move |lua, (f, handler, args): (Function, Function, MultiValue)| {
                    let (ok, out) = protected(lua, &ab, &f, args)?;
                    let mut out = if ok {
                        out
                    } else {
                        handler.call::<MultiValue>(out)?
                    };
                    out.push_front(Value::Boolean(ok));
                    Ok(out)
                },
            )?;
            g.raw_set("pcall", pcall)?;
            g.raw_set("xpcall", xpcall)?;
            register_kam(&lua)?;
            // The read-only base every call's environment falls back to.
            let read_only: Function = lua.load(READ_ONLY).set_name("=kam").call(())?;
            let base = lua.create_table()?;
            for pair in g.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let v = match (&k, &v) {
                    (Value::String(name), Value::Table(t)) => {
                        let name = name.to_string_lossy();
                        Value::Table(read_only.call::<Table>((t.clone(), name))?)
                    }
                    _ => v,
                };
                base.raw_set(k, v)?;
            }
            let meta = lua.create_table()?;
            meta.raw_set(
                "__index",
                read_only.call::<Table>((base, "the standard library"))?,
            )?;
            Ok(meta)
        };
        let base_meta =
            setup().map_err(|e| format!("cannot set up the Lua sandbox: {}", error_message(&e)))?;
        lua.set_memory_limit(limits.memory)
            .map_err(|e| e.to_string())?;
        let (u, ab, budget) = (used.clone(), aborted.clone(), limits.instructions);
        let (dl, time_ms) = (deadline.clone(), limits.time_ms);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(1000),
            move |_lua, debug| {
                u.set(u.get() + 1000);
                let over_budget = u.get() > budget;
                // One clock read per 1000 instructions: a string function can copy megabytes in
                // one instruction, so a loop of them stays within the budget for minutes.
                if !over_budget && Instant::now() <= dl.get() {
                    return Ok(VmState::Continue);
                }
                ab.set(true);
                let src = debug
                    .source()
                    .short_src
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let line = debug
                    .current_line()
                    .map(|l| l.to_string())
                    .unwrap_or_default();
                Err(mlua::Error::runtime(if over_budget {
                    format!(
                        "{src}:{line}: instruction budget of {budget} exceeded (an endless loop?)"
                    )
                } else {
                    format!(
                        "{src}:{line}: time budget of {time_ms} ms per call exceeded (raise limits.time_ms if the script is meant to be this slow)"
                    )
                }))
            },
        )
        .map_err(|e| e.to_string())?;
        // Each file is compiled once as a factory `function(_ENV) <file> end` (on the file's
        // first line, so line numbers stay true); calling the factory with a fresh environment
        // runs the file afresh: new closures, new upvalues, nothing kept from the last account.
        let mut factories: Vec<(String, Function)> = Vec::new();
        for (path, text) in sources {
            let wrapped = format!("return function(_ENV) {text}\nend");
            let factory: Function = lua
                .load(wrapped)
                .set_name(format!("@{path}"))
                .set_mode(ChunkMode::Text)
                .call(())
                .map_err(|e| error_message(&e))?;
            let stem = std::path::Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            factories.push((stem, factory));
        }
        // require(name): another Lua file of the rules folder, by plain name.
        let modules = factories.clone();
        let meta = base_meta.clone();
        let require = lua
            .create_function(move |lua, name: String| {
                let Some((_, factory)) = modules.iter().find(|(n, _)| *n == name) else {
                    return Err(mlua::Error::runtime(format!(
                        "require: no module `{name}` among the rules folder's Lua files"
                    )));
                };
                let env = lua.create_table()?;
                env.set_metatable(Some(meta.clone()))?;
                factory.call::<Value>(env)
            })
            .map_err(|e| e.to_string())?;
        Ok(LuaVm {
            lua,
            chunks: factories.into_iter().map(|(_, f)| f).collect(),
            require,
            used,
            deadline,
            limits_time_ms: limits.time_ms,
            aborted,
            base_meta,
            ctx: None,
            key_index: Default::default(),
        })
    }

    /// Sets the names of the value slots calls pass and which of them the account table shows
    /// (not params, not `portfolio.*`: those are in `ctx`).
    pub fn set_keys(&mut self, names: &[String], visible: &[usize]) {
        self.key_index = visible
            .iter()
            .filter_map(|&i| Some((names.get(i)?.clone(), i)))
            .collect();
    }

    /// Sets the read-only `ctx` table (params and portfolio) every call receives.
    pub fn set_context(
        &mut self,
        params: &[(String, V<'_>)],
        portfolio: &[(String, V<'_>)],
    ) -> Result<(), String> {
        let build = || -> mlua::Result<Table> {
            let read_only: Function = self.lua.load(READ_ONLY).set_name("=kam").call(())?;
            let p = self.lua.create_table()?;
            for (k, v) in params {
                p.raw_set(k.as_str(), to_lua(&self.lua, v)?)?;
            }
            let f = self.lua.create_table()?;
            for (k, v) in portfolio {
                f.raw_set(k.trim_start_matches("portfolio."), to_lua(&self.lua, v)?)?;
            }
            let ctx = self.lua.create_table()?;
            ctx.raw_set("params", read_only.call::<Table>((p, "ctx.params"))?)?;
            ctx.raw_set("portfolio", read_only.call::<Table>((f, "ctx.portfolio"))?)?;
            read_only.call::<Table>((ctx, "ctx"))
        };
        self.ctx = Some(build().map_err(|e| error_message(&e))?);
        Ok(())
    }

    fn call_value(&self, func: &str, slots: &[V<'_>]) -> Result<Value, String> {
        self.used.set(0);
        self.deadline
            .set(Instant::now() + Duration::from_millis(self.limits_time_ms));
        self.aborted.set(false);
        let run = || -> mlua::Result<Value> {
            let env = self.lua.create_table()?;
            env.set_metatable(Some(self.base_meta.clone()))?;
            env.raw_set("require", self.require.clone())?;
            for factory in &self.chunks {
                factory.call::<()>(env.clone())?;
            }
            let f: Value = env.raw_get(func)?;
            let Value::Function(f) = f else {
                return Err(mlua::Error::runtime(format!(
                    "no Lua function `{func}` in the pack's Lua files"
                )));
            };
            let ctx = match &self.ctx {
                Some(c) => Value::Table(c.clone()),
                None => Value::Nil,
            };
            // The account is a table whose fields are looked up when the script reads them,
            // so an account costs what the script uses, not what the workbook has.
            let t = self.lua.create_table()?;
            let outcome = self.lua.scope(|scope| {
                let index = scope.create_function(|lua, (_t, key): (Value, Value)| {
                    let Value::String(k) = key else {
                        return Ok(Value::Nil);
                    };
                    let k = k.to_str()?;
                    match self.key_index.get(&*k).and_then(|&i| slots.get(i)) {
                        Some(v) => to_lua(lua, v),
                        None => Ok(Value::Nil),
                    }
                })?;
                let meta = self.lua.create_table()?;
                meta.raw_set("__index", index)?;
                t.set_metatable(Some(meta))?;
                f.call::<Value>((t.clone(), ctx))
            });
            outcome.map_err(|e| {
                let message = error_message(&e);
                if message.contains(".lua:") {
                    mlua::Error::runtime(message)
                } else {
                    let info = f.info();
                    let src = info.short_src.clone().unwrap_or_default();
                    let line = info.line_defined.map(|l| l.to_string()).unwrap_or_default();
                    mlua::Error::runtime(format!("{src}:{line}: in function {func}: {message}"))
                }
            })
        };
        let result = run().map_err(|e| error_message(&e));
        if result.is_err() {
            // Free what a memory bomb left behind before the next account.
            let _ = self.lua.gc_collect();
        }
        result
    }

    /// Calls a criterion function.
    /// `slots` are the account's values by slot (names set with [`LuaVm::set_keys`]).
    pub fn criterion(&self, func: &str, slots: &[V<'_>]) -> Result<LuaVerdict, String> {
        match self.call_value(func, slots)? {
            Value::Nil | Value::Boolean(false) => Ok(LuaVerdict::default()),
            Value::Boolean(true) => Ok(LuaVerdict {
                matched: true,
                ..Default::default()
            }),
            Value::Table(t) => {
                let get = |k: &str| t.raw_get::<Value>(k).map_err(|e| error_message(&e));
                let matched = match get("matched")? {
                    Value::Nil => true,
                    Value::Boolean(b) => b,
                    _ => {
                        return Err(format!(
                            "`{func}` returned a table whose `matched` is not true/false"
                        ));
                    }
                };
                let points = match get("points")? {
                    Value::Nil => None,
                    Value::Integer(i) => Some(i as f64),
                    Value::Number(n) if n.is_finite() => Some(n),
                    _ => return Err(format!("`{func}` returned points that are not a number")),
                };
                let text = |k: &str| -> Result<Option<String>, String> {
                    match get(k)? {
                        Value::Nil => Ok(None),
                        Value::String(s) => Ok(Some(s.to_string_lossy())),
                        _ => Err(format!("`{func}` returned a `{k}` that is not text")),
                    }
                };
                let actions = match get("actions")? {
                    Value::Nil => None,
                    Value::Table(a) => Some(
                        a.sequence_values::<String>()
                            .collect::<mlua::Result<Vec<_>>>()
                            .map_err(|e| error_message(&e))?,
                    ),
                    _ => {
                        return Err(format!(
                            "`{func}` returned `actions` that is not a list of texts"
                        ));
                    }
                };
                Ok(LuaVerdict {
                    matched,
                    points,
                    label: text("label")?,
                    reason: text("reason")?,
                    actions,
                })
            }
            other => Err(format!(
                "`{func}` must return true/false or a table, not a {}",
                other.type_name()
            )),
        }
    }

    /// Calls a measure function: a number or nothing.
    pub fn measure(&self, func: &str, slots: &[V<'_>]) -> Result<Option<f64>, String> {
        match self.call_value(func, slots)? {
            Value::Nil => Ok(None),
            Value::Integer(i) => Ok(Some(i as f64)),
            Value::Number(n) if n.is_finite() => Ok(Some(n)),
            Value::Number(_) => Ok(None),
            other => Err(format!(
                "`{func}` must return a number or nil, not a {}",
                other.type_name()
            )),
        }
    }
}

/// Calls `f` like Lua's pcall: `(true, results)` or `(false, message)`; a budget or memory
/// error is re-raised instead, so protected calls cannot escape the limits.
fn protected(
    lua: &Lua,
    aborted: &Cell<bool>,
    f: &Function,
    args: MultiValue,
) -> mlua::Result<(bool, MultiValue)> {
    match f.call::<MultiValue>(args) {
        Ok(values) => Ok((true, values)),
        Err(e) if aborted.get() || is_memory_error(&e) => {
            aborted.set(true);
            Err(e)
        }
        Err(e) => {
            let mut out = MultiValue::new();
            out.push_back(Value::String(lua.create_string(error_message(&e))?));
            Ok((false, out))
        }
    }
}

fn to_lua(lua: &Lua, v: &V<'_>) -> mlua::Result<Value> {
    Ok(match v {
        V::Missing => Value::Nil,
        V::Num(n) => Value::Number(*n),
        V::Bool(b) => Value::Boolean(*b),
        V::Str(s) => Value::String(lua.create_string(s.as_bytes())?),
    })
}

/// Registers the `kam` helper table (see `docs/lua.md`).
fn register_kam(lua: &Lua) -> mlua::Result<()> {
    let kam = lua.create_table()?;
    kam.raw_set(
        "share",
        lua.create_function(|_, (part, total): (Option<f64>, Option<f64>)| {
            Ok(match (part, total) {
                (Some(p), Some(t)) if t > 0.0 => Some(p / t),
                _ => None,
            })
        })?,
    )?;
    kam.raw_set(
        "clamp",
        lua.create_function(|_, (x, lo, hi): (Option<f64>, f64, f64)| {
            Ok(x.map(|x| x.clamp(lo.min(hi), hi.max(lo))))
        })?,
    )?;
    kam.raw_set(
        "round",
        lua.create_function(|_, (x, digits): (Option<f64>, Option<i32>)| {
            let k = 10f64.powi(digits.unwrap_or(0).clamp(0, 12));
            Ok(x.map(|x| (x * k).round() / k))
        })?,
    )?;
    let words = lua.create_function(|lua, text: Option<String>| {
        let t = lua.create_table()?;
        for (i, w) in text
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .enumerate()
        {
            t.raw_set(i + 1, w.to_lowercase())?;
        }
        Ok(t)
    })?;
    kam.raw_set("list", words)?;
    lua.globals().raw_set("kam", kam)?;
    Ok(())
}
