import { api, session } from "../api.js";
import { h, table, when } from "../dom.js";
import { notify } from "../notice.js";
import { methodChoices } from "./methods.js";

// An image the API serves behind a key: fetched with the key, shown from a blob URL.
async function imageOf(item) {
  const response = await api(item.image_url);
  return URL.createObjectURL(await response.blob());
}

export async function inboxPage(modelId) {
  const element = h("section", {});
  const urls = [];
  const { methods, preset } = await methodChoices();
  const load = async () => {
    const [model, items] = await Promise.all([
      api(`/v1/models/${modelId}`), api(`/v1/models/${modelId}/inbox?status=open`)]);
    const images = await Promise.all(items.map(imageOf));
    urls.push(...images);
    const boxes = items.map((item) => h("input", { type: "checkbox", value: item.id, checked: true }));
    const rows = items.map((item, index) => h("tr", { dataset: { item: item.id } },
      h("td", {}, boxes[index]),
      h("td", {}, h("img", { class: "thumb", src: images[index], alt: "asked about" })),
      h("td", {}, item.kind === "chat" ? item.question : (item.labels || []).join(", ")),
      h("td", { class: "served" }, item.served),
      h("td", { class: "right" }, item.right_answer),
      h("td", {}, `v${item.version_number}`),
      h("td", {}, when(item.flagged_at)),
      h("td", {}, h("button", { class: "dismiss", onclick: async () => {
        try {
          await api(`/v1/models/${modelId}/inbox/${item.id}/dismiss`, { method: "POST" });
          await load();
        } catch (error) {
          notify(error);
        }
      } }, "Dismiss"))));
    const method = h("select", { name: "method" },
      methods.map((name) => h("option", { value: name, selected: name === preset }, name)));
    const create = h("button", { class: "primary", id: "correct-from-inbox",
      disabled: !items.length, onclick: async () => {
        const itemIds = boxes.filter((box) => box.checked).map((box) => box.value);
        try {
          const accepted = await api(`/v1/models/${modelId}/inbox/corrections`, { method: "POST",
            json: { item_ids: itemIds, method: method.value } });
          location.hash = `#/jobs/${accepted.job_id}`;
        } catch (error) {
          notify(error);
        }
      } }, "Correct from the selected items");
    element.replaceChildren(
      h("h1", {}, `Mistakes inbox of ${model.name}`),
      h("p", { class: "muted" }, model.feedback_capture
        ? `Feedback capture is on: answers are kept ${model.feedback_retention_hours} h for flagging.`
        : "Feedback capture is off: answers served now cannot be flagged (an admin turns it on "
          + "on the model's page)."),
      table(["", "Image", "Asked", "Served", "Right answer", "Version", "Flagged", ""], rows,
        { id: "inbox" }),
      h("div", { class: "actions" }, h("label", {}, "Method ", method), create));
  };
  await load();
  return { element, leave: () => urls.forEach((url) => URL.revokeObjectURL(url)) };
}

// Flagging a served answer (compare page): an inference key may say what was right.
export function flagForm(answerId, choices) {
  const right = choices
    ? h("select", { name: "right" }, choices.map((label) => h("option", { value: label }, label)))
    : h("input", { type: "text", name: "right", placeholder: "the right answer" });
  const button = h("button", { class: "flag", type: "button", onclick: async () => {
    const body = choices ? { label: right.value } : { answer: right.value.trim() };
    try {
      await api(`/v1/answers/${answerId}/feedback`, { method: "POST", json: body });
      button.replaceWith(h("span", { class: "badge ok flagged" }, "flagged"));
    } catch (error) {
      notify(error);
    }
  } }, "Flag as wrong");
  return session.can("inference")
    ? h("div", { class: "actions" }, h("span", { class: "muted" }, "Right answer:"), right, button)
    : null;
}
