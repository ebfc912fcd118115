import { api } from "../api.js";
import { h, table, when } from "../dom.js";

export async function modelsPage() {
  const models = await api("/v1/models");
  const rows = models.map((model) => h("tr", {},
    h("td", {}, h("a", { href: `#/models/${model.id}` }, model.name)),
    h("td", {}, model.family),
    h("td", {}, model.active_version_number ? `v${model.active_version_number}` : "—"),
    h("td", {}, model.activation_policy),
    h("td", {}, when(model.created_at))));
  return { element: h("section", {}, h("h1", {}, "Models"),
    table(["Model", "Family", "Active", "Gate", "Registered"], rows, { id: "models" })) };
}
