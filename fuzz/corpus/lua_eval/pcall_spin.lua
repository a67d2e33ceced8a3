function measure(a, ctx)
  while true do pcall(function() while true do end end) end
end
function criterion(a, ctx)
  while true do pcall(function() while true do end end) end
end
