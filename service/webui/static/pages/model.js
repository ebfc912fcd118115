import { api, session } from "../api.js";
import { metricsChart, setAccuraciesChart } from "../charts.js";
import { askText, h, signed, table, when } from "../dom.js";
import { notify } from "../notice.js";
import { filesFromInput } from "../pickers.js";

function gateCell(version) {
  if (!version.gate) return h("span", { class: "muted" }, version.number === 1 ? "base" : "—");
  const badge = version.gate.activated
    ? h("span", { class: "badge ok" }, "activated")
    : h("span", { class: "badge warn" }, "held");
  return h("div", {}, badge, h("div", { class: "muted" }, version.gate.reasons.join("; ")));
}

function statusCell(version) {
  const kind = { ready: "ok", failed: "bad", pending: "warn" }[version.status] || "";
  return h("span", {}, h("span", { class: `badge ${kind}` }, version.status),
    version.archived_at ? h("span", { class: "badge" }, "archived") : null,
    version.active ? h("span", { class: "badge active" }, "active") : null);
}

// Activate (a newer version) or roll back (an older one) with a reason; admin keys only.
function moveButton(model, version, activeNumber, reload) {
  if (!session.can("admin") || version.active || version.status !== "ready" || version.archived_at) {
    return null;
  }
  const action = activeNumber !== null && version.number < activeNumber ? "rollback" : "activate";
  const title = action === "rollback" ? `Roll back to v${version.number}` : `Activate v${version.number}`;
  return h("button", {
    class: "move", dataset: { version: version.number, action },
    onclick: async () => {
      const reason = await askText(title, "why (recorded in the deployment history)");
      if (!reason) return;
      try {
        await api(`/v1/models/${model.id}/${action}`, { method: "POST",
          json: { version_id: version.id, reason } });
        notify(`${title}: done`, "info");
        await reload();
      } catch (error) {
        notify(error);
      }
    },
  }, title);
}

// The version as a standard checkpoint (a tar the API streams; admin keys only).
async function download(model, version) {
  try {
    const response = await api(`/v1/models/${model.id}/versions/${version.id}/export`);
    const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const link = h("a", { href: URL.createObjectURL(await response.blob()),
      download: name ? name[1] : `${model.name}-v${version.number}.tar` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (error) {
    notify(error);
  }
}

function exportButton(model, version) {
  if (!session.can("admin") || version.status !== "ready" || version.archived_at) return null;
  return h("button", { class: "export", dataset: { version: version.number },
    onclick: () => download(model, version) }, "Export");
}

// Delete the model with its versions, jobs and blobs (admin); the API refuses (409) while a
// job runs or a key is restricted to it, and the message says which.
function deleteButton(model) {
  if (!session.can("admin")) return null;
  return h("button", { class: "danger", id: "delete-model", onclick: async () => {
    const typed = await askText(`Delete ${model.name} and all its versions? Type its name.`,
      model.name);
    if (typed === null) return;
    if (typed !== model.name) {
      notify(`Not deleted: "${typed}" is not the model's name`);
      return;
    }
    try {
      await api(`/v1/models/${model.id}`, { method: "DELETE" });
      location.hash = "#/";
    } catch (error) {
      notify(error);
    }
  } }, "Delete model");
}

// Feedback capture (admin): while on, served answers are kept so they can be flagged.
function captureControl(model, reload) {
  const state = model.feedback_capture
    ? `on (answers kept ${model.feedback_retention_hours} h)` : "off";
  const toggle = session.can("admin") ? h("button", { id: "capture-toggle", onclick: async () => {
    try {
      await api(`/v1/models/${model.id}/feedback-capture`, { method: "PUT",
        json: { enabled: !model.feedback_capture, retention_hours: model.feedback_retention_hours } });
      await reload();
    } catch (error) {
      notify(error);
    }
  } }, model.feedback_capture ? "Turn off" : "Turn on") : null;
  return h("span", { id: "capture" }, state, " ", toggle);
}

function versionsTable(model, versions, reload) {
  const numberOf = Object.fromEntries(versions.map((v) => [v.id, v.number]));
  const active = versions.find((v) => v.active);
  const activeNumber = active ? active.number : null;
  const generative = model.generative;
  const rows = [...versions].reverse().map((v) => h("tr", { dataset: { version: v.number } },
    h("td", {}, `v${v.number}`),
    h("td", {}, v.parent_id ? `v${numberOf[v.parent_id] ?? "?"}` : "—"),
    h("td", {}, v.method),
    h("td", {}, statusCell(v)),
    h("td", { class: "ti" }, signed(v.evaluation?.ti)),
    h("td", { class: "cc" }, signed(v.evaluation?.cc)),
    generative ? h("td", {}, signed(v.evaluation?.answer_ti)) : null,
    generative ? h("td", {}, signed(v.evaluation?.answer_cc)) : null,
    h("td", { class: "sets" }, (v.evaluation?.sets || []).map((s) =>
      h("div", {}, `${s.set_name} (${s.kind}): ${s.accuracy_before.toFixed(1)} → `
        + `${s.accuracy_after.toFixed(1)}`))),
    h("td", {}, gateCell(v)),
    h("td", {}, when(v.created_at)),
    h("td", {}, v.job_id ? h("a", { href: `#/jobs/${v.job_id}` }, "job") : null,
      moveButton(model, v, activeNumber, reload), exportButton(model, v))));
  const headers = ["Version", "Parent", "Method", "Status", "TI", "CC",
    ...(generative ? ["Answer TI", "Answer CC"] : []), "Per set (accuracy %)", "Gate",
    "Created", ""];
  return table(headers, rows, { id: "versions" });
}

function deploymentsTable(deployments, numberOf) {
  const rows = [...deployments].reverse().map((d) => h("tr", {},
    h("td", {}, when(d.created_at)), h("td", {}, d.action),
    h("td", {}, d.from_version_id ? `v${numberOf[d.from_version_id] ?? "?"}` : "—"),
    h("td", {}, `v${numberOf[d.to_version_id] ?? "?"}`), h("td", {}, d.actor),
    h("td", {}, d.reason)));
  return table(["When", "Action", "From", "To", "Who", "Why"], rows, { id: "deployments" });
}

function jobsTable(jobs) {
  const rows = jobs.map((job) => h("tr", {},
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.id.slice(0, 8))),
    h("td", {}, job.status), h("td", {}, job.method),
    h("td", {}, job.progress.total ? `${job.progress.step}/${job.progress.total}` : "—"),
    h("td", {}, when(job.created_at))));
  return table(["Job", "Status", "Method", "Steps", "Created"], rows, { id: "jobs" });
}

function evalSetsTable(model, sets, reload) {
  const remove = (set) => h("button", { class: "danger remove-set", onclick: async () => {
    if (!(await askText(`Delete evaluation set ${set.name}?`, "why"))) return;
    try {
      await api(`/v1/models/${model.id}/eval-sets/${set.id}`, { method: "DELETE" });
      await reload();
    } catch (error) {
      notify(error);
    }
  } }, "Delete");
  const rows = sets.map((s) => h("tr", { dataset: { set: s.name } }, h("td", {}, s.name),
    h("td", {}, s.kind), h("td", {}, s.size), h("td", {}, s.labels.length),
    h("td", {}, s.max_drop === null ? "—" : s.max_drop),
    h("td", {}, session.can("admin") ? remove(s) : null)));
  return table(["Name", "Kind", "Images", "Labels", "Max drop", ""], rows, { id: "eval-sets" });
}

// Register an evaluation set from a folder per label (admin keys only).
function evalSetForm(model, reload) {
  if (!session.can("admin")) return null;
  let picked = [];
  const count = h("span", { class: "muted" }, "no images yet");
  const folder = h("input", { type: "file", multiple: true, webkitdirectory: true,
    id: "eval-set-folder", onchange: (event) => {
      picked = filesFromInput(event.target).filter((p) => p.file.type.startsWith("image/") && p.label);
      count.textContent = `${picked.length} image(s), ${new Set(picked.map((p) => p.label)).size} label(s)`;
    } });
  const name = h("input", { type: "text", name: "name", required: true });
  const kind = h("select", { name: "kind" }, h("option", { value: "control" }, "control (must not regress)"),
    h("option", { value: "target" }, "target (what corrections should fix)"));
  const maxDrop = h("input", { type: "number", name: "max_drop", step: "0.1", min: 0,
    placeholder: "points a version may lose (control sets)" });
  const form = h("form", { class: "stack", id: "eval-set" },
    h("label", { class: "field" }, "Name", name), h("label", { class: "field" }, "Kind", kind),
    h("label", { class: "field" }, "Max drop", maxDrop),
    h("label", { class: "field" }, "A folder per label", folder), count,
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Register set")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    body.append("name", name.value);
    body.append("kind", kind.value);
    if (maxDrop.value) body.append("max_drop", maxDrop.value);
    for (const { file, label } of picked) {
      body.append("images", file, file.name);
      body.append("labels", label);
    }
    try {
      await api(`/v1/models/${model.id}/eval-sets`, { method: "POST", form: body });
      await reload();
    } catch (error) {
      notify(error);
    }
  });
  return h("details", { id: "register-eval-set" },
    h("summary", {}, "Register an evaluation set"), form);
}

export async function modelPage(modelId) {
  const element = h("section", {});
  const charts = [];
  const load = async () => {
    const [model, versions, deployments, jobs, evalSets] = await Promise.all([
      api(`/v1/models/${modelId}`), api(`/v1/models/${modelId}/versions`),
      api(`/v1/models/${modelId}/deployments`), api(`/v1/models/${modelId}/jobs?limit=20`),
      api(`/v1/models/${modelId}/eval-sets`)]);
    versions.sort((a, b) => a.number - b.number);
    const numberOf = Object.fromEntries(versions.map((v) => [v.id, v.number]));
    const metricsCanvas = h("canvas", { id: "metrics-chart" });
    const setsCanvas = h("canvas", { id: "sets-chart" });
    const actions = h("div", { class: "actions" },
      session.can("corrections")
        ? h("a", { class: "button primary", href: `#/models/${model.id}/correct` }, "New correction")
        : null,
      session.can("inference")
        ? h("a", { class: "button", href: `#/models/${model.id}/compare` }, "Compare versions")
        : null,
      session.can("corrections")
        ? h("a", { class: "button", href: `#/models/${model.id}/inbox` }, "Mistakes inbox")
        : null,
      deleteButton(model));
    element.replaceChildren(
      h("h1", {}, model.name, " ",
        h("span", { class: "badge" }, model.family),
        model.active_version_number
          ? h("span", { class: "badge active" }, `v${model.active_version_number} active`) : null),
      h("div", { class: "kv" },
        h("span", { class: "muted" }, "gate"),
        h("span", {}, `${model.activation_policy} (threshold ${model.activation_threshold})`),
        h("span", { class: "muted" }, "base"), h("span", {}, model.base_path || "—"),
        h("span", { class: "muted" }, "feedback capture"), captureControl(model, load)),
      actions,
      h("div", { class: "charts" },
        h("div", { class: "chart" }, metricsCanvas), h("div", { class: "chart" }, setsCanvas)),
      h("h2", {}, "Versions"), versionsTable(model, versions, load),
      h("h2", {}, "Deployments"), deploymentsTable(deployments, numberOf),
      h("h2", {}, "Jobs"), jobsTable(jobs),
      h("h2", {}, "Evaluation sets"), evalSetsTable(model, evalSets, load),
      evalSetForm(model, load));
    charts.splice(0).forEach((chart) => chart.destroy());
    charts.push(metricsChart(metricsCanvas, versions), setAccuraciesChart(setsCanvas, versions));
  };
  await load();
  return { element, leave: () => charts.forEach((chart) => chart.destroy()) };
}
