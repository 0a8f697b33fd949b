-- Health of cds.capitalonline.net/RedisBackup: a backup of a RedisInstance's cloud instance on
-- CapitalOnline cloud (CDS), made by the cds-redis-operator. The operator writes
-- metav1.Conditions, each with observedGeneration:
--   Ready        True once the cloud reports the backup finished; False with reason Pending
--                (waiting for its instance), Creating, Deleting or Unavailable.
--   Synced       whether the last reconcile succeeded; its reason names the failure.
--   Reconciling  present (True) while the operator works on its own: waiting, creating, retrying.
--   Stalled      present (True) when progress needs a person; its reason names the failure.
-- Healthy: Ready. Degraded: Stalled. Progressing: not yet observed, waiting, creating, deleting.
local hs = {}

local function find(conditions, type)
  for _, condition in ipairs(conditions) do
    if condition.type == type then
      return condition
    end
  end
  return nil
end

local function isTrue(condition)
  return condition ~= nil and condition.status == "True"
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
local reconciling = find(conditions, "Reconciling")
local stalled = find(conditions, "Stalled")

if obj.metadata.deletionTimestamp ~= nil then
  if isTrue(stalled) then
    hs.status = "Degraded"
    hs.message = "Deleting the cloud backup is stalled: " .. describe(stalled)
  else
    hs.status = "Progressing"
    hs.message = "Deleting the cloud backup"
  end
  hs.deletionMessage = hs.message
  return hs
end

local generation = obj.metadata.generation
local observed = nil
if status ~= nil then
  observed = status.observedGeneration
end
if observed == nil or observed == 0 then
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

if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = "Completed"
  if status.sizeBytes ~= nil then
    hs.message = "Completed: " .. tostring(status.sizeBytes) .. " bytes"
  end
  return hs
end

hs.status = "Progressing"
if isTrue(reconciling) then
  hs.message = describe(reconciling)
elseif ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the operator"
end
return hs
