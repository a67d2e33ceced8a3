function measure(a, ctx)
  return io.open("/etc/passwd") ~= nil
end
function criterion(a, ctx)
  return io.open("/etc/passwd") ~= nil
end
