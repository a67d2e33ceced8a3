function measure(a, ctx)
  return (a.share or 0) * 100
end
function criterion(a, ctx)
  return (a.share or 0) * 100
end
