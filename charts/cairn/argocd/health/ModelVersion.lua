-- Argo CD health of a cairn.dev/v1alpha1 ModelVersion, read from the status the Cairn operator
-- writes: status.phase (Invalid, PendingApproval, Approved, Rejected) and the conditions
-- Validated, Approved and Ready.
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

local function said(c, otherwise)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return otherwise
end

local function health(obj)
  local status = obj.status
  if status == nil or status.phase == nil then
    return "Progressing", "waiting for the Cairn operator to validate the version"
  end
  -- spec.approval is the one field that changes: until the operator has judged the latest
  -- one, the phase describes the previous approval.
  local generation = obj.metadata.generation
  if generation ~= nil and (status.observedGeneration or 0) < generation then
    return "Progressing", "waiting for the Cairn operator to observe generation " .. generation
  end
  if status.phase == "Invalid" then
    -- GatesFailed (a metric missed its gate) or ModelNotFound.
    return "Degraded", said(condition(obj, "Validated"), "the version is invalid")
  end
  if status.phase == "Rejected" then
    return "Degraded", said(condition(obj, "Approved"), "rejected")
  end
  if status.phase == "PendingApproval" then
    -- Waiting for a person (`cairn approve`), as a paused rollout waits: Suspended.
    return "Suspended", said(condition(obj, "Approved"), "waiting for approval")
  end
  local ready = condition(obj, "Ready")
  if status.phase == "Approved" and ready ~= nil and ready.status == "True" then
    local message = "approved; may be served"
    if status.keyMetric ~= nil then
      message = message .. " (" .. status.keyMetric .. ")"
    end
    return "Healthy", message
  end
  return "Progressing", said(ready, "waiting for the Cairn operator")
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
