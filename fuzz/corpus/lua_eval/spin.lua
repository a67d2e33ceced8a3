function measure(a, ctx)
  while true do end
end
function criterion(a, ctx)
  while true do end
end
