-- Argo CD health of a cairn.dev/v1alpha1 ModelDeployment, read from the status the Cairn
-- operator writes: status.phase (Progressing, Available, Degraded, Paused), the conditions
-- Available, Progressing and Degraded, status.canary and status.rollback.
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

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- A canary waiting at a `pause: {}` step (no duration) waits for `cairn resume`.
local function at_manual_pause(obj)
  local canary = obj.status.canary
  if canary == nil or canary.version == nil or canary.promoting == true then
    return false
  end
  local strategy = obj.spec.strategy
  if strategy == nil or strategy.canary == nil or strategy.canary.steps == nil then
    return false
  end
  -- status.canary.step counts from 0, Lua lists from 1.
  local step = strategy.canary.steps[(canary.step or 0) + 1]
  return step ~= nil and step.pause ~= nil and step.pause.duration == nil
end

local function health(obj)
  local status = obj.status
  if status == nil or status.phase == nil then
    return "Progressing", "waiting for the Cairn operator to observe the deployment"
  end
  local generation = obj.metadata.generation
  if generation ~= nil and (status.observedGeneration or 0) < generation then
    return "Progressing", "waiting for the Cairn operator to observe generation " .. generation
  end
  local degraded = condition(obj, "Degraded")
  if is_true(degraded) or status.phase == "Degraded" then
    -- A rolled-back canary (AnalysisFailed, Aborted, ProgressDeadlineExceeded), a target that
    -- cannot be served (VersionNotReady, AliasNotResolved, ...), or pods that make no progress.
    if is_true(degraded) then
      return "Degraded", degraded.reason .. ": " .. degraded.message
    end
    return "Degraded", status.message or "degraded"
  end
  if obj.spec.paused == true then
    return "Suspended", "paused (spec.paused is true); `cairn resume` goes on"
  end
  if status.phase == "Paused" or at_manual_pause(obj) then
    return "Suspended", status.message or "the rollout waits for `cairn resume`"
  end
  local progressing = condition(obj, "Progressing")
  if status.phase == "Progressing" or is_true(progressing) then
    return "Progressing", status.message or (progressing and progressing.message) or "rolling out"
  end
  local available = condition(obj, "Available")
  if status.phase == "Available" and is_true(available) then
    return "Healthy", available.message
  end
  return "Progressing", status.message or "waiting for the serving pods"
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
