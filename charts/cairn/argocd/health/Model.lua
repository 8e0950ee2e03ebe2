-- Argo CD health of a cairn.dev/v1alpha1 Model, read from the status the Cairn operator
-- writes: the Ready and AliasesResolved conditions, status.latestVersion and status.aliases.
-- Every script repeats its helpers: Argo CD runs each health check alone, with no modules.
local function condition(obj, kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- status.aliases as "production=3, staging=4", sorted so the message is stable.
local function aliases(status)
  local names = {}
  for name, _ in pairs(status.aliases or {}) do
    table.insert(names, name)
  end
  table.sort(names)
  local words = {}
  for _, name in ipairs(names) do
    table.insert(words, name .. "=" .. status.aliases[name])
  end
  return table.concat(words, ", ")
end

local function health(obj)
  local status = obj.status
  if status == nil then
    return "Progressing", "waiting for the Cairn operator to observe the model"
  end
  local generation = obj.metadata.generation
  if generation ~= nil and (status.observedGeneration or 0) < generation then
    return "Progressing", "waiting for the Cairn operator to observe generation " .. generation
  end
  local ready = condition(obj, "Ready")
  if ready == nil then
    return "Progressing", "waiting for the Cairn operator to resolve the aliases"
  end
  if ready.status ~= "True" then
    -- InvalidAliasTarget: an alias in spec.aliases names a version that does not exist or is
    -- not Validated and Approved; the message says which.
    return "Degraded", ready.reason .. ": " .. ready.message
  end
  local said = "no version registered yet"
  if status.latestVersion ~= nil then
    said = "latest version " .. status.latestVersion
  end
  local resolved = aliases(status)
  if resolved ~= "" then
    said = said .. "; " .. resolved
  end
  return "Healthy", said
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
