-- Health of cds.capitalonline.net/ProviderConfig: a CapitalOnline cloud (CDS) account for the
-- objects of one namespace, checked by the cds-redis-operator. The operator writes
-- metav1.Conditions, each with observedGeneration:
--   Ready        True once a signed call (DescribeRegins) succeeded with the credentials since
--                they last changed (reason CredentialsVerified); False with reason SecretNotFound,
--                CredentialsMissing, InvalidCredentials (with Stalled) or CloudUnavailable (with
--                Reconciling).
--   Stalled      present (True) when only a person can help: the Secret or the AccessKey is wrong.
--   Reconciling  present (True) while the cloud cannot be reached; the check is retried.
--   InUse        present (True, reason DeletionBlocked) while the config is being deleted and
--                objects still use it; its message names them.
-- Healthy: verified. Degraded: Stalled. Progressing: not yet observed, the cloud unavailable, or
-- a deletion held by the objects that use the config.
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
local stalled = find(conditions, "Stalled")
local reconciling = find(conditions, "Reconciling")
local inUse = find(conditions, "InUse")

if obj.metadata.deletionTimestamp ~= nil then
  -- The in-use finalizer holds the config until no object uses it.
  hs.status = "Progressing"
  if isTrue(inUse) then
    hs.message = describe(inUse)
  else
    hs.message = "Being deleted"
  end
  hs.deletionMessage = hs.message
  return hs
end

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

if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if isTrue(reconciling) then
  hs.message = describe(reconciling)
else
  hs.message = describe(ready)
end
return hs
