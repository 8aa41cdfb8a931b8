-- Runs the Argo CD health check (../argocd/health.lua) on sample Migration objects, the way
-- Argo CD does: the script as a chunk with the object in the global `obj`.
-- Usage: lua5.4 argocd_health_test.lua [path/to/health.lua]
-- Prints one line per case and "N passed, N failed"; exits 1 on any failure.

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local script = arg[1] or (dir .. "/../argocd/health.lua")

local function run(object)
  local env = setmetatable({ obj = object }, { __index = _G })
  local chunk, err = loadfile(script, "t", env)
  if chunk == nil then
    error("cannot load " .. script .. ": " .. err)
  end
  return chunk()
end

local function cond(kind, status, gen, reason, message)
  return { type = kind, status = status, observedGeneration = gen, reason = reason,
           message = message }
end

local function migration(gen, status, spec)
  return { apiVersion = "datamigrate.ai/v1alpha1", kind = "Migration",
           metadata = { name = "northwind", namespace = "data", generation = gen },
           spec = spec or { target = { dialect = "duckdb" } }, status = status }
end

local cases = {
  { "new object without status is Progressing", migration(1, nil), "Progressing" },
  { "Succeeded with Ready=True at the current generation is Healthy",
    migration(2, { observedGeneration = 2, phase = "Succeeded",
      conditions = { cond("Ready", "True", 2, "Succeeded", "Published 29 models"),
                     cond("Reconciling", "False", 2, "Succeeded"),
                     cond("Stalled", "False", 2, "Succeeded") } }),
    "Healthy", "Published 29 models" },
  { "Ready=True for an older generation is Progressing (status.observedGeneration stale)",
    migration(3, { observedGeneration = 2, phase = "Succeeded",
      conditions = { cond("Ready", "True", 2, "Succeeded") } }),
    "Progressing", "generation 3" },
  { "Ready=True whose own observedGeneration is stale is Progressing",
    migration(3, { observedGeneration = 3, phase = "Extracting",
      conditions = { cond("Ready", "True", 2, "Succeeded"),
                     cond("Reconciling", "True", 3, "Extracting", "Reading the catalogue") } }),
    "Progressing", "Reading the catalogue" },
  { "Stalled=True at the current generation is Degraded",
    migration(4, { observedGeneration = 4, phase = "Failed",
      conditions = { cond("Ready", "False", 4, "InvalidSpec"),
                     cond("Stalled", "True", 4, "InvalidSpec", "secret dm-src not found") } }),
    "Degraded", "secret dm-src not found" },
  { "Stalled=True from an older generation is not Degraded",
    migration(5, { observedGeneration = 4, phase = "Failed",
      conditions = { cond("Stalled", "True", 4, "InvalidSpec") } }),
    "Progressing" },
  { "Failed phase with Ready=False is Degraded",
    migration(2, { observedGeneration = 2, phase = "Failed",
      conditions = { cond("Ready", "False", 2, "StepFailed", "publish failed: exit 65") } }),
    "Degraded", "publish failed" },
  { "running step is Progressing with the Reconciling message",
    migration(1, { observedGeneration = 1, phase = "Generating",
      conditions = { cond("Ready", "False", 1, "Generating"),
                     cond("Reconciling", "True", 1, "Generating", "12/29 models") } }),
    "Progressing", "12/29 models" },
  { "suspended Migration is Suspended",
    migration(2, { observedGeneration = 2, phase = "Suspended",
      conditions = { cond("Ready", "False", 2, "Suspended") } },
      { suspend = true }),
    "Suspended" },
  { "conditions without observedGeneration fall back to status.observedGeneration",
    migration(1, { observedGeneration = 1, phase = "Succeeded",
      conditions = { { type = "Ready", status = "True", reason = "Succeeded" } } }),
    "Healthy" },
}

local passed, failed = 0, 0
for _, case in ipairs(cases) do
  local name, object, want, want_msg = case[1], case[2], case[3], case[4]
  local ok, hs = pcall(run, object)
  local good = ok and hs.status == want
    and (want_msg == nil or (hs.message or ""):find(want_msg, 1, true) ~= nil)
  if good then
    passed = passed + 1
    print("ok   " .. name)
  else
    failed = failed + 1
    local got = ok and (hs.status .. " (" .. tostring(hs.message) .. ")") or tostring(hs)
    print("FAIL " .. name .. ": want " .. want .. ", got " .. got)
  end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
