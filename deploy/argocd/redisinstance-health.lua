-- Argo CD health check for cds.capitalonline.net/RedisInstance.
-- Healthy: Ready=True. Progressing: creating, deleting, or not yet observed by the operator.
-- Degraded: a terminal failure (Stalled=True, whose reason is the Synced reason that needs a
-- change of the object or its Secrets), the Failed phase, or a cloud status the operator does
-- not know.
local hs = {}
local function finish(status, message)
  hs.status = status
  hs.message = message
  return hs
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  return finish("Progressing", "Deleting the cloud instance")
end
if obj.status == nil or obj.status.conditions == nil then
  return finish("Progressing", "Waiting for the operator")
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  return finish("Progressing", "Waiting for the operator to observe the latest spec")
end

local ready = nil
local synced = nil
local stalled = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Synced" then
    synced = condition
  elseif condition.type == "Stalled" then
    stalled = condition
  end
end

if stalled ~= nil and stalled.status == "True" then
  return finish("Degraded", stalled.reason .. ": " .. (stalled.message or ""))
end
-- Statuses written before the Stalled condition existed: the same terminal reasons in Synced.
local terminal = {
  SecretNotFound = true, SecretKeyMissing = true, InvalidSpec = true, FlavorNotAvailable = true,
  CloudRejected = true, AmbiguousInstance = true, ExternallyDeleted = true, InstanceNotFound = true,
  CredentialsMissing = true, InstanceInUse = true, SecretConflict = true,
}
if synced ~= nil and synced.status == "False" and terminal[synced.reason] then
  return finish("Degraded", synced.reason .. ": " .. (synced.message or ""))
end
if ready ~= nil and ready.status == "True" then
  local message = "Running"
  if obj.status.endpoint ~= nil then
    message = "Running at " .. obj.status.endpoint.host .. ":" .. tostring(obj.status.endpoint.port)
  end
  if synced ~= nil and synced.status == "False" then
    message = message .. " (" .. synced.reason .. ": " .. (synced.message or "") .. ")"
  end
  return finish("Healthy", message)
end
if obj.status.phase == "Failed" or obj.status.phase == "Unknown" then
  local why = "phase " .. obj.status.phase
  if ready ~= nil and ready.message ~= nil then why = why .. ": " .. ready.message end
  return finish("Degraded", why)
end
local message = "Creating"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then message = ready.message end
if synced ~= nil and synced.status == "False" then
  message = message .. " (retrying: " .. synced.reason .. ": " .. (synced.message or "") .. ")"
end
return finish("Progressing", message)
