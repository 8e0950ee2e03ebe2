-- Argo CD health of a cairn.dev/v1alpha1 TrainingRun, read from the status the Cairn operator
-- writes: status.phase (Pending, Running, Succeeded, Failed), status.failureReason, and the
-- conditions Running, Succeeded, Failed and Registered.
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

local function first_line(text)
  if text == nil or text == "" then
    return nil
  end
  return string.match(text, "^[^\n]*")
end

local function health(obj)
  local status = obj.status
  if status == nil or status.phase == nil then
    return "Progressing", "waiting for the Cairn operator to start the run"
  end
  -- A finished run is a record that the operator never writes again, so its phase is final
  -- even when metadata.generation moved later (spec.suspend toggled after the end).
  if status.phase == "Failed" then
    local said = first_line(status.message) or "the run failed"
    return "Degraded", (status.failureReason or "Failed") .. ": " .. said
  end
  if status.phase == "Succeeded" then
    if obj.spec ~= nil and obj.spec.register == false then
      return "Healthy", "trained (spec.register is false: not registered)"
    end
    local registered = condition(obj, "Registered")
    if registered == nil then
      return "Progressing", "trained; registering the model version"
    end
    if registered.status == "True" then
      return "Healthy", registered.message
    end
    -- Refused by the API server, or nothing to register: no retry will change it.
    if registered.reason == "VersionRefused" or registered.reason == "NoArtifact" then
      return "Degraded", registered.reason .. ": " .. (first_line(registered.message) or "")
    end
    return "Progressing", "trained; not registered yet: " .. (first_line(registered.message) or "")
  end
  local generation = obj.metadata.generation
  if generation ~= nil and (status.observedGeneration or 0) < generation then
    return "Progressing", "waiting for the Cairn operator to observe generation " .. generation
  end
  if obj.spec ~= nil and obj.spec.suspend == true then
    return "Suspended", "suspended (spec.suspend is true); set it to false to go on"
  end
  -- Waiting for something only a person can create: the artifact claim or the code ConfigMap.
  local waiting = condition(obj, "Running")
  if waiting ~= nil and (waiting.reason == "ArtifactClaimMissing"
      or waiting.reason == "CodeConfigMapMissing") then
    return "Degraded", waiting.reason .. ": " .. (first_line(status.message) or "")
  end
  if status.phase == "Running" then
    return "Progressing", "training, attempt " .. (status.attempts or 1)
  end
  return "Progressing", first_line(status.message) or "waiting for the training pod"
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
