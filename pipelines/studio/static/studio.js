// The local studio's script: live updates from the server's event streams, tabs, filters and actions.
// Everything it shows comes from the studio's own pages and streams; it loads nothing from elsewhere.
"use strict";

const TOKEN = document.querySelector('meta[name="studio-token"]').content;

function statusClass(status) {
  return "status-" + String(status).split(" (")[0].replace(/ /g, "-");
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge " + statusClass(status);
  span.textContent = status;
  return span;
}

function seconds(value) {
  if (value === null || value === undefined) return "-";
  if (value < 120) return value.toFixed(1) + "s";
  return Math.floor(value / 60) + "m " + String(Math.floor(value % 60)).padStart(2, "0") + "s";
}

function localTime(iso) {
  if (!iso) return "-";
  const when = new Date(iso);
  return isNaN(when) ? iso : when.toLocaleString();
}

function showTimes(root) {
  root.querySelectorAll(".time[data-time]").forEach((cell) => {
    if (cell.dataset.time && cell.dataset.time !== "None") cell.textContent = localTime(cell.dataset.time);
  });
}

async function act(url, body) {
  // every action is a POST carrying the token in a header no other site's page can set
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Studio-Token": TOKEN},
    body: JSON.stringify(body || {}),
  });
  let answer = {};
  try { answer = await response.json(); } catch (e) { answer = {error: response.statusText}; }
  return {ok: response.ok, status: response.status, answer};
}

function tabs(root) {
  root.querySelectorAll(".tabs").forEach((bar) => {
    const scope = bar.parentElement;
    const buttons = bar.querySelectorAll("[data-tab]");
    const select = (name) => {
      buttons.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
      scope.querySelectorAll(":scope > section.tab").forEach((s) => { s.hidden = s.id !== "tab-" + name; });
    };
    buttons.forEach((b) => b.addEventListener("click", () => select(b.dataset.tab)));
    const chosen = [...buttons].find((b) => b.getAttribute("aria-selected") === "true") || buttons[0];
    if (chosen) select(chosen.dataset.tab);
  });
}

// --- lists of executions ---------------------------------------------------------------------

function executionRow(row, table) {
  const tr = document.createElement("tr");
  tr.dataset.status = row.status;
  const cell = (content, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    tr.appendChild(td);
    return td;
  };
  if (table.dataset.choose === "yes") {
    const box = document.createElement("input");
    box.type = "checkbox"; box.name = "compare"; box.value = row.id;
    box.setAttribute("aria-label", "compare " + row.id);
    cell(box);
  }
  cell(badge(row.status));
  const link = document.createElement("a");
  link.href = "/executions/" + row.id; link.textContent = row.id;
  cell(link);
  if (!table.dataset.pipeline) {
    const pipeline = document.createElement("a");
    pipeline.href = "/pipelines/" + encodeURIComponent(row.pipeline); pipeline.textContent = row.pipeline;
    cell(pipeline);
  }
  cell(localTime(row.start), "time");
  cell(seconds(row.duration));
  cell((row.retries === null ? "-" : row.retries) + "/" + row.step_retries);
  cell(row.failure || "", "reason");
  return tr;
}

function liveExecutions(table) {
  const checked = () => new Set([...table.querySelectorAll("input[name=compare]:checked")].map((b) => b.value));
  const stream = new EventSource("/api/events");
  stream.onmessage = (event) => {
    const keep = checked();
    let rows = JSON.parse(event.data);
    if (table.dataset.pipeline) rows = rows.filter((r) => r.pipeline === table.dataset.pipeline);
    if (!rows.length) return;
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((row) => executionRow(row, table)));
    body.querySelectorAll("input[name=compare]").forEach((b) => { b.checked = keep.has(b.value); });
    applyFilters(table);
    updateCompare(table);
  };
}

function applyFilters(table) {
  const status = document.getElementById("status-filter");
  const search = document.getElementById("search");
  if (!status || !search) return;
  const wanted = status.value, text = search.value.trim().toLowerCase();
  [...table.tBodies[0].rows].forEach((tr) => {
    const statusOk = !wanted || (tr.dataset.status || "").startsWith(wanted);
    tr.hidden = !(statusOk && (!text || tr.textContent.toLowerCase().includes(text)));
  });
}

function updateCompare(table) {
  const button = document.getElementById("compare-button");
  if (!button) return;
  const chosen = [...table.querySelectorAll("input[name=compare]:checked")].map((b) => b.value);
  button.disabled = chosen.length < 2;
  button.onclick = () => { location.href = "/compare?" + chosen.map((id) => "id=" + id).join("&"); };
}

// --- an execution, live -----------------------------------------------------------------------

function shorten(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

function paintStep(node, step) {
  node.setAttribute("class", "node " + statusClass(step.status) + (node.classList.contains("selected") ? " selected" : ""));
  const parts = [node.dataset.type, step.status];
  if (step.duration !== undefined && step.duration !== null && step.end) parts.push(seconds(step.duration));
  if (step.attempts > 1) parts.push("attempt " + step.attempts);
  if (step.cache_hit_from) parts.push("cache hit");
  if (step.outcome !== null && step.outcome !== undefined) parts.push("→ " + step.outcome);
  node.querySelector(".meta").textContent = shorten(parts.join(" · "), 36);  // the node's width; the title has all
  node.querySelector(".reason").textContent = step.failure ? shorten(step.failure, 34) : "";
  node.querySelector("title").textContent = node.dataset.step + " (" + parts.join(" · ") + ")" +
    (step.failure ? ": " + step.failure : "");
}

function paintMlflowRun(state) {  // the run is logged as the execution ends: shown then, without a reload
  const span = document.getElementById("mlflow-run");
  if (!span || !state.mlflow_run) return;
  const id = state.mlflow_run.run_id.slice(0, 12);
  const target = state.mlflow_link
    ? Object.assign(document.createElement("a"), {href: state.mlflow_link, target: "_blank", rel: "noopener", textContent: id})
    : Object.assign(document.createElement("code"), {title: "mlflow ui --backend-store-uri " + state.mlflow_run.tracking_uri,
                                                     textContent: id});
  span.replaceChildren("MLflow run ", target, " (" + state.mlflow_run.experiment + ")");
  span.hidden = false;
}

function paintExecution(state) {
  document.getElementById("execution-status").replaceChildren(badge(state.status));
  const failure = document.getElementById("execution-failure");
  failure.hidden = !state.failure; failure.textContent = state.failure || "";
  const elapsed = document.getElementById("elapsed");
  elapsed.dataset.end = state.end || "";
  document.getElementById("retries").textContent = state.retries;
  paintMlflowRun(state);
  document.getElementById("stop-button").hidden = !state.stoppable;
  const note = document.getElementById("stop-note");  // why Stop is not offered while it runs (a terminal runs it)
  note.hidden = !state.stop_note; note.textContent = state.stop_note || "";
  document.getElementById("retry-button").hidden = state.running || state.status === "Succeeded";
  document.getElementById("rerun").hidden = state.running;
  for (const [name, step] of Object.entries(state.steps)) {
    const node = document.getElementById("node-" + name);
    if (node) paintStep(node, step);
  }
  document.querySelectorAll(".edge").forEach((edge) => {
    const target = state.steps[edge.dataset.target];
    edge.classList.toggle("not-taken", Boolean(target && target.status === "Not taken"));
  });
  timeline(state);
  window.studioState = state;
}

function timeline(state) {
  const box = document.getElementById("timeline");
  const ran = Object.values(state.steps).filter((s) => s.start);
  if (!ran.length) { box.textContent = "No step has started yet."; return; }
  const start = Date.parse(state.start);
  const end = state.end ? Date.parse(state.end) : Date.now();
  const span = Math.max(1, end - start);
  box.replaceChildren(...ran.sort((a, b) => Date.parse(a.start) - Date.parse(b.start)).map((step) => {
    const row = document.createElement("div");
    row.className = "lane";
    const label = document.createElement("span");
    label.className = "lane-label"; label.textContent = step.name;
    const track = document.createElement("span");
    track.className = "lane-track";
    const bar = document.createElement("span");
    bar.className = "bar " + statusClass(step.status);
    const from = Date.parse(step.start) - start, to = (step.end ? Date.parse(step.end) : Date.now()) - start;
    bar.style.left = (100 * from / span).toFixed(2) + "%";
    bar.style.width = Math.max(0.5, 100 * (to - from) / span).toFixed(2) + "%";
    bar.title = step.name + ": " + localTime(step.start) + " to " + (step.end ? localTime(step.end) : "now");
    track.appendChild(bar);
    const time = document.createElement("span");
    time.className = "lane-time"; time.textContent = step.end ? seconds(step.duration) : "running";
    row.append(label, track, time);
    return row;
  }));
}

function tick() {
  const elapsed = document.getElementById("elapsed");
  if (!elapsed) return;
  const start = Date.parse(elapsed.dataset.start);
  const end = elapsed.dataset.end ? Date.parse(elapsed.dataset.end) : Date.now();
  elapsed.textContent = seconds((end - start) / 1000);
  if (!elapsed.dataset.end && window.studioState) timeline(window.studioState);
}

let followers = [];

async function openStep(execution, name) {
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  const node = document.getElementById("node-" + name);
  if (node) node.classList.add("selected");
  followers.forEach((f) => f.close());
  followers = [];
  const panel = document.getElementById("step-panel");
  const response = await fetch("/executions/" + execution + "/steps/" + encodeURIComponent(name));
  panel.innerHTML = await response.text();
  panel.dataset.step = name;
  tabs(panel.querySelector(".step-detail") || panel);
  showTimes(panel);
  panel.querySelectorAll("pre.log[data-log]").forEach((pre) => {
    const stream = new EventSource(pre.dataset.log);
    stream.onmessage = (event) => {
      const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(JSON.parse(event.data) + "\n");
      if (follow) pre.scrollTop = pre.scrollHeight;
    };
    stream.addEventListener("end", () => { stream.close(); pre.classList.add("ended"); });
    followers.push(stream);
  });
}

function liveExecution() {
  const execution = document.body.dataset.execution;
  const initial = JSON.parse(document.getElementById("initial-state").textContent);
  paintExecution(initial);
  const stream = new EventSource("/api/executions/" + execution + "/events");
  let lastStatuses = JSON.stringify(Object.values(initial.steps).map((s) => s.status));
  stream.onmessage = (event) => {
    const state = JSON.parse(event.data);
    paintExecution(state);
    const statuses = JSON.stringify(Object.values(state.steps).map((s) => s.status));
    const open = document.getElementById("step-panel").dataset.step;
    if (open && statuses !== lastStatuses && !document.querySelector("#step-panel pre.log:not(.ended)")) {
      openStep(execution, open);
    }
    lastStatuses = statuses;
  };
  document.querySelectorAll(".node").forEach((node) => {
    const open = () => openStep(execution, node.dataset.step);
    node.addEventListener("click", open);
    node.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  });
  ["stop", "retry"].forEach((action) => {
    document.getElementById(action + "-button").addEventListener("click", async (e) => {
      e.target.disabled = true;
      showProblem("");
      const result = await act("/api/executions/" + execution + "/" + action);
      e.target.disabled = false;
      if (!result.ok) showProblem(result.answer.error);
    });
  });
  const rerun = document.getElementById("rerun-form");
  rerun.addEventListener("submit", async (event) => {
    event.preventDefault();
    const steps = [...rerun.querySelectorAll("input[name=step]:checked")].map((b) => b.value);
    const result = await act("/api/executions/" + execution + "/rerun", {steps});
    if (result.ok) { location.href = result.answer.url; return; }
    rerun.querySelector(".form-error").textContent = result.answer.error;
  });
  setInterval(tick, 500);
}

function showProblem(message) {
  // a line of its own, which live updates leave alone: the answer stays until the next press
  const line = document.getElementById("action-problem");
  line.hidden = !message;
  line.textContent = message;
}

// --- forms --------------------------------------------------------------------------------------

function fieldErrors(form, errors) {
  form.querySelectorAll(".field").forEach((field) => {
    const message = errors[field.dataset.field] || "";
    field.classList.toggle("invalid", Boolean(message));
    field.querySelector(".field-error").textContent = message;
  });
}

function startForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parameters = {};
    form.querySelectorAll("input[name], select[name]").forEach((input) => {
      if (input.value.trim() !== "") parameters[input.name] = input.value;
    });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await act("/api/pipelines/" + encodeURIComponent(form.dataset.pipeline) + "/start", {parameters});
    button.disabled = false;
    fieldErrors(form, result.answer.errors || {});
    form.querySelector(".form-error").textContent = result.ok || result.answer.errors ? "" : result.answer.error;
    if (result.ok) location.href = result.answer.url;
  });
}

function decisionForm(form) {
  const {group, version} = document.body.dataset;
  let decision = "approve";
  form.querySelectorAll("button[name=decision]").forEach((b) => b.addEventListener("click", () => { decision = b.value; }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const comment = form.querySelector("textarea[name=comment]").value;
    const result = await act("/api/registry/" + encodeURIComponent(group) + "/" + version + "/decision", {decision, comment});
    if (result.ok) { location.reload(); return; }
    fieldErrors(form, {comment: result.answer.error});
  });
}

function deployForm(form) {
  const {group, version} = document.body.dataset;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const endpoint = form.querySelector("input[name=endpoint]").value.trim();
    const out = form.querySelector(".form-result");
    out.textContent = "Deploying…";
    const result = await act("/api/registry/" + encodeURIComponent(group) + "/" + version + "/deploy", {endpoint});
    fieldErrors(form, result.ok ? {} : {endpoint: result.answer.error});
    out.textContent = result.ok ? "Serving at " + result.answer.url + " (see Endpoints)" : "";
  });
}

function endpointForms() {
  document.querySelectorAll(".invoke-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = form.querySelector(".invoke-result");
      const result = await act("/api/endpoints/" + encodeURIComponent(form.dataset.endpoint) + "/invoke",
                               {body: form.querySelector("textarea").value});
      out.hidden = false;
      out.textContent = result.ok ? "HTTP " + result.answer.status + "\n" + result.answer.body : result.answer.error;
    });
  });
  document.querySelectorAll(".undeploy").forEach((button) => {
    button.addEventListener("click", async () => {
      const result = await act("/api/endpoints/" + encodeURIComponent(button.dataset.endpoint) + "/delete");
      if (result.ok) location.reload();
    });
  });
}

function registryCompare() {
  document.querySelectorAll("section.group").forEach((section) => {
    const button = section.querySelector(".compare-versions");
    const chosen = () => [...section.querySelectorAll("input[name=version]:checked")].map((b) => b.value);
    section.addEventListener("change", () => { button.disabled = chosen().length < 2; });
    button.addEventListener("click", () => {
      location.href = "/registry/" + encodeURIComponent(section.dataset.group) + "/compare?" +
        chosen().map((v) => "v=" + v).join("&");
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  showTimes(document);
  tabs(document.querySelector("main"));
  const page = document.body.dataset.page;
  document.querySelectorAll("table.executions[data-live]").forEach((table) => {
    liveExecutions(table);
    table.addEventListener("change", () => updateCompare(table));
    ["status-filter", "search"].forEach((id) => {
      const input = document.getElementById(id);
      if (input) input.addEventListener("input", () => applyFilters(table));
    });
  });
  if (page === "execution") liveExecution();
  const start = document.getElementById("start-form");
  if (start) startForm(start);
  const decision = document.getElementById("decision-form");
  if (decision) decisionForm(decision);
  const deploy = document.getElementById("deploy-form");
  if (deploy) deployForm(deploy);
  if (page === "endpoints") endpointForms();
  if (page === "registry") registryCompare();
  const only = document.getElementById("only-differences");
  if (only) only.addEventListener("change", () => {
    document.querySelectorAll("table.compare tr.same").forEach((tr) => { tr.hidden = only.checked; });
  });
});
