function measure(a, ctx)
  return #string.rep(a.name, 1e9)
end
function criterion(a, ctx)
  return #string.rep(a.name, 1e9)
end
