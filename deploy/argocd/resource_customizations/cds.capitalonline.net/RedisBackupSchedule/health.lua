-- Health of cds.capitalonline.net/RedisBackupSchedule: backups of a RedisInstance on a cron
-- schedule, made by the cds-redis-operator. The operator writes metav1.Conditions, each with
-- observedGeneration:
--   Ready    True while the schedule runs (reason Scheduled, or Suspended); False with reason
--            InvalidSchedule (with Stalled) or InstanceNotFound (its backups wait for the instance).
--   Synced   whether the last reconcile succeeded.
--   Stalled  present (True) when only an edit of the spec can help.
-- Healthy: scheduled. Suspended: spec.suspend. Degraded: Stalled. Progressing: not yet observed,
-- or waiting for the instance.
local hs = {}

local function find(conditions, type)
  for _, condition in ipairs(conditions) do
    if condition.type == type then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.reason .. ": " .. condition.message
  end
  return condition.reason
end

local status = obj.status
local conditions = {}
if status ~= nil and status.conditions ~= nil then
  conditions = status.conditions
end
local ready = find(conditions, "Ready")
local stalled = find(conditions, "Stalled")

local generation = obj.metadata.generation
local observed = nil
if status ~= nil then
  observed = status.observedGeneration
end
if observed == nil or observed == 0 or ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the object"
  return hs
end
if generation ~= nil and observed ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (observed: " .. tostring(observed) .. ")"
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if ready.status == "True" then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready)
return hs
