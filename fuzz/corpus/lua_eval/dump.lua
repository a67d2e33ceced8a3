function measure(a, ctx)
  return string.dump(measure)
end
function criterion(a, ctx)
  return string.dump(measure)
end
