import { api } from "../api.js";
import { probabilitiesChart } from "../charts.js";
import { h } from "../dom.js";
import { notify } from "../notice.js";
import { flagForm } from "./inbox.js";

function versionSelect(name, versions, selected) {
  return h("select", { name },
    versions.map((v) => h("option", { value: v.id, selected: v.id === selected?.id },
      `v${v.number}${v.active ? " (active)" : ""} · ${v.method}`)));
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function classifyWith(modelId, versionId, image, labels, template) {
  const body = new FormData();
  body.append("images", image, image.name);
  for (const label of labels) body.append("labels", label);
  if (template) body.append("template", template);
  body.append("version_id", versionId);
  const answer = await api(`/v1/models/${modelId}/classify`, { method: "POST", form: body });
  return answer;
}

async function askWith(model, versionId, image, question) {
  const completion = await api("/v1/chat/completions", { method: "POST", json: {
    model: model.name, version_id: versionId, max_tokens: 32,
    messages: [{ role: "user", content: [
      { type: "text", text: question },
      { type: "image_url", image_url: { url: await dataUrl(image) } }] }] } });
  return completion;
}

export async function comparePage(modelId) {
  const [model, versions] = await Promise.all([
    api(`/v1/models/${modelId}`), api(`/v1/models/${modelId}/versions`)]);
  const ready = versions.filter((v) => v.status === "ready").sort((a, b) => a.number - b.number);
  const active = ready.find((v) => v.active) || ready[ready.length - 1];
  const before = ready.find((v) => active && v.id === active.parent_id) || ready[0];
  const left = versionSelect("left", ready, before);
  const right = versionSelect("right", ready, active);
  const image = h("input", { type: "file", accept: "image/*", name: "image", required: true });
  const labels = h("textarea", { name: "labels", placeholder: "one candidate label per line" });
  const template = h("input", { type: "text", name: "template", placeholder: "a photo of {} (optional)" });
  const question = h("input", { type: "text", name: "question", value: "What is shown in the image?" });
  const preview = h("img", { class: "thumb", style: "width: 96px; height: 96px", alt: "" });
  image.addEventListener("change", () => {
    if (image.files[0]) preview.src = URL.createObjectURL(image.files[0]);
  });
  const results = h("div", { class: "side", id: "comparison" });
  const charts = [];
  const form = h("form", { class: "stack", id: "compare" },
    h("div", { class: "side" }, h("label", { class: "field" }, "Version A", left),
      h("label", { class: "field" }, "Version B", right)),
    h("label", { class: "field" }, "Your image", image), preview,
    model.generative ? h("label", { class: "field" }, "Question", question)
      : [h("label", { class: "field" }, "Candidate labels", labels),
         h("label", { class: "field" }, "Template", template)],
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Compare")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    charts.splice(0).forEach((chart) => chart.destroy());
    results.replaceChildren();
    const file = image.files[0];
    try {
      for (const select of [left, right]) {
        const version = ready.find((v) => v.id === select.value);
        const card = h("div", { class: "card", dataset: { version: version.number } },
          h("h2", {}, `v${version.number}`));
        results.append(card);
        if (model.generative) {
          const completion = await askWith(model, version.id, file, question.value);
          card.append(h("p", { class: "answer" }, completion.choices[0].message.content));
          if (model.feedback_capture) card.append(flagForm(completion.id, null) || "");
        } else {
          const candidates = labels.value.split("\n").map((l) => l.trim()).filter(Boolean);
          const answer = await classifyWith(modelId, version.id, file, candidates, template.value.trim());
          const prediction = answer.predictions[0];
          const canvas = h("canvas", {});
          card.append(h("p", { class: "answer" }, `${prediction.label} `,
            h("span", { class: "muted" }, prediction.probabilities[prediction.label].toFixed(4))),
            h("div", { class: "chart" }, canvas));
          if (model.feedback_capture) card.append(flagForm(prediction.answer_id, candidates) || "");
          charts.push(probabilitiesChart(canvas, prediction.probabilities, `v${version.number}`));
        }
      }
    } catch (error) {
      notify(error);
    }
  });
  return { element: h("section", {}, h("h1", {}, `Compare versions of ${model.name}`), form, results),
    leave: () => charts.forEach((chart) => chart.destroy()) };
}
