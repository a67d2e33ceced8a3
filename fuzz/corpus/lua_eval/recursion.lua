function measure(a, ctx)
  local function f(n) return f(n + 1) + 1 end return f(1)
end
function criterion(a, ctx)
  local function f(n) return f(n + 1) + 1 end return f(1)
end
