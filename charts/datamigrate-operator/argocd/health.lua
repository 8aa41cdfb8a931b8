-- Argo CD health check for datamigrate.ai/Migration.
-- Install it as `resource.customizations.health.datamigrate.ai_Migration` in argocd-cm (see
-- docs/gitops.md). Argo CD runs it with the live object in the global `obj`.
--
-- A condition or status written for an older generation says nothing about the current spec:
-- until the operator has observed `metadata.generation`, the Migration is Progressing, so a
-- sync that changed the spec never reports Healthy on the previous run's Ready=True.

local hs = { status = "Progressing", message = "Waiting for the operator" }

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- True when a value written for generation `seen` is current for generation `gen`.
local function current(seen, gen)
  if gen == nil then
    return true
  end
  return seen ~= nil and seen >= gen
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

local gen = obj.metadata and obj.metadata.generation
local status = obj.status
if status == nil then
  return hs
end

if not current(status.observedGeneration, gen) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(gen)
  return hs
end

-- A condition without its own observedGeneration inherits the status' one.
local function fresh(c)
  return c ~= nil and current(c.observedGeneration or status.observedGeneration, gen)
end

local stalled = condition(status, "Stalled")
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")

if fresh(stalled) and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if fresh(ready) then
  if ready.status == "True" then
    hs.status = "Healthy"
    hs.message = describe(ready, "Ready")
    return hs
  end
  if status.phase == "Failed" then
    hs.status = "Degraded"
    hs.message = describe(ready, "Failed")
    return hs
  end
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend)"
  return hs
end

if status.phase ~= nil then
  hs.message = describe(reconciling, "Phase " .. status.phase)
end
return hs
