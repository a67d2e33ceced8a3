-- Lua helpers of the default key-client pack. Each function receives the account (a table of
-- its fields, facts and measures so far; missing values are nil) and ctx (ctx.params,
-- ctx.portfolio). See docs/lua.md.

-- How many of definitions 3–6 hold: reference, partner, more competent, innovator.
function strategic_definitions(account, ctx)
  local p = ctx.params
  local n = 0
  if account.reference or (account.brand_score or -1) >= p.reference_brand_score then n = n + 1 end
  if (account.partnership or -1) >= p.partner_score then n = n + 1 end
  if (account.competence or -1) >= p.competence_score then n = n + 1 end
  if account.innovator then n = n + 1 end
  return n
end
