import { api } from "../api.js";
import { askText, h, table, when } from "../dom.js";
import { notify } from "../notice.js";

const SCOPES = ["inference", "corrections", "admin"];

function bytes(count) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export async function adminPage() {
  const element = h("section", {});
  const load = async () => {
    const [keys, models, storage] = await Promise.all([
      api("/v1/api-keys"), api("/v1/models"), api("/v1/storage")]);
    const modelName = Object.fromEntries(models.map((m) => [m.id, m.name]));
    const rows = keys.map((key) => h("tr", { dataset: { key: key.name } },
      h("td", {}, key.name), h("td", {}, h("code", {}, key.prefix)),
      h("td", {}, key.scopes.join(", ")),
      h("td", {}, key.model_ids ? key.model_ids.map((id) => modelName[id] || id).join(", ") : "all"),
      h("td", {}, when(key.created_at)), h("td", {}, when(key.expires_at)),
      h("td", {}, when(key.last_used_at)),
      h("td", {}, key.revoked_at ? h("span", { class: "badge bad" }, "revoked")
        : h("button", { class: "danger revoke", onclick: async () => {
          if (!(await askText(`Revoke ${key.name}?`, "type yes"))) return;
          try {
            await api(`/v1/api-keys/${key.id}`, { method: "DELETE" });
            await load();
          } catch (error) {
            notify(error);
          }
        } }, "Revoke"))));
    const name = h("input", { type: "text", name: "name", required: true, placeholder: "who uses it" });
    const scopeBoxes = SCOPES.map((scope) => h("label", {},
      h("input", { type: "checkbox", name: "scopes", value: scope, checked: scope === "inference" }),
      ` ${scope} `));
    const restrict = h("select", { name: "models", multiple: true },
      models.map((m) => h("option", { value: m.id }, m.name)));
    const expires = h("input", { type: "datetime-local", name: "expires" });
    const created = h("div", { id: "created-key" });
    const form = h("form", { class: "stack", id: "create-key" },
      h("label", { class: "field" }, "Name", name),
      h("div", { class: "field" }, "Scopes ", scopeBoxes),
      h("label", { class: "field" }, "Only these models (none selected: every model)", restrict),
      h("label", { class: "field" }, "Expires (optional)", expires),
      h("div", { class: "actions" }, h("button", { class: "primary" }, "Create key")), created);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const scopes = scopeBoxes.map((label) => label.firstChild).filter((box) => box.checked)
        .map((box) => box.value);
      const modelIds = [...restrict.selectedOptions].map((option) => option.value);
      try {
        const key = await api("/v1/api-keys", { method: "POST", json: {
          name: name.value, scopes, model_ids: modelIds.length ? modelIds : null,
          expires_at: expires.value ? new Date(expires.value).toISOString() : null } });
        await load();
        element.querySelector("#created-key").replaceChildren(
          h("p", {}, `Key for ${key.name} (shown once: store it now):`),
          h("code", { class: "key" }, key.key));
      } catch (error) {
        notify(error);
      }
    });
    const collect = async (dryRun) => {
      try {
        const report = await api("/v1/storage/gc", { method: "POST", json: { dry_run: dryRun } });
        element.querySelector("#gc-report").textContent = JSON.stringify(report);
        if (!dryRun) await load();
      } catch (error) {
        notify(error);
      }
    };
    element.replaceChildren(
      h("h1", {}, "API keys"), table(["Name", "Prefix", "Scopes", "Models", "Created", "Expires",
        "Last used", ""], rows, { id: "keys" }),
      h("h2", {}, "New key"), form,
      h("h2", {}, "Storage"),
      h("p", { id: "storage" }, `${storage.blobs} blobs, ${bytes(storage.bytes)}`),
      h("div", { class: "actions" },
        h("button", { onclick: () => collect(true) }, "What would garbage collection delete?"),
        h("button", { class: "danger", onclick: () => collect(false) }, "Collect garbage")),
      h("pre", { id: "gc-report", class: "muted" }));
  };
  await load();
  return { element };
}
