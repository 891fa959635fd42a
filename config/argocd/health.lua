-- Argo CD health check for Croupier's kinds (Campaign, Segment, ChannelPolicy,
-- PreferencePolicy, Report): Healthy when Ready is True for the current generation; Progressing
-- while the controller has not caught up or says Reconciling; Degraded when Ready is
-- False for a reason a person must fix (Stalled); a Campaign paused by spec or by its
-- budget is Suspended (healthy, sending nothing).
hs = {}
hs.status = "Progressing"
hs.message = "waiting for the controller"
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
if obj.status.observedGeneration ~= nil and generation ~= nil and obj.status.observedGeneration < generation then
  hs.message = "the controller has not seen generation " .. generation .. " yet"
  return hs
end
local ready, stalled, reconciling, paused
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" and c.status == "True" then stalled = c end
  if c.type == "Reconciling" and c.status == "True" then reconciling = c end
  if c.type == "Paused" and c.status == "True" then paused = c end
end
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if reconciling ~= nil then
  hs.message = reconciling.reason .. ": " .. (reconciling.message or "")
  return hs
end
if ready == nil then
  return hs
end
if ready.status == "True" then
  if paused ~= nil then
    hs.status = "Suspended"
    hs.message = paused.reason .. ": " .. (paused.message or "")
    return hs
  end
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
hs.status = "Degraded"
hs.message = ready.reason .. ": " .. (ready.message or "")
return hs
