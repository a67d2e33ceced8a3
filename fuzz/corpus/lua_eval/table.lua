function measure(a, ctx)
  return {matched = a.share > 0.1, points = 5, reason = "share " .. tostring(a.share)}
end
function criterion(a, ctx)
  return {matched = a.share > 0.1, points = 5, reason = "share " .. tostring(a.share)}
end
