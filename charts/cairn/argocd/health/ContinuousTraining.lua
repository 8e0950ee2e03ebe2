-- Argo CD health of a cairn.dev/v1alpha1 ContinuousTraining, read from the status the Cairn
-- operator writes: the Ready condition (its triggers can work), spec.suspend, the active runs
-- and the last trigger. A run that fails is its own object's health, not this one's.
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

local function health(obj)
  local status = obj.status
  if status == nil then
    return "Progressing", "waiting for the Cairn operator to observe the triggers"
  end
  local generation = obj.metadata.generation
  if generation ~= nil and (status.observedGeneration or 0) < generation then
    return "Progressing", "waiting for the Cairn operator to observe generation " .. generation
  end
  local ready = condition(obj, "Ready")
  if ready ~= nil and ready.status ~= "True" then
    -- InvalidSchedule, InvalidDataset, ConditionSourceNotFound: nothing runs until it is fixed.
    return "Degraded", ready.reason .. ": " .. ready.message
  end
  if obj.spec ~= nil and obj.spec.suspend == true then
    return "Suspended", "suspended (spec.suspend is true): triggers are skipped"
  end
  if status.active ~= nil and #status.active > 0 then
    return "Progressing", "training: " .. table.concat(status.active, ", ")
  end
  local said = "watching its triggers"
  if status.lastTrigger ~= nil then
    said = "last run " .. (status.lastTrigger.run or "?") .. " (" .. status.lastTrigger.type .. ")"
  end
  if status.lastSuccessfulVersion ~= nil then
    said = said .. "; last version " .. status.lastSuccessfulVersion
  end
  return "Healthy", said
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
