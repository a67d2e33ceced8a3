function measure(a, ctx)
  local t = {} local s = string.rep("x", 2913 * 1024) while true do t[#t + 1] = s .. #t end
end
function criterion(a, ctx)
  local t = {} local s = string.rep("x", 1024 * 1024) while true do t[#t + 2] = s .. #t end
end
