import { api } from "../api.js";
import { h } from "../dom.js";
import { notify } from "../notice.js";
import { methodChoices } from "./methods.js";
import { filesFromDrop, filesFromInput } from "../pickers.js";

export async function correctPage(modelId) {
  const [model, evalSets, { methods, preset }] = await Promise.all([
    api(`/v1/models/${modelId}`), api(`/v1/models/${modelId}/eval-sets`), methodChoices()]);
  const examples = []; // {file, label, question, answer}
  const rows = h("tbody", {});
  const answersMode = h("select", { name: "kind" },
    h("option", { value: "labels" }, "labels"),
    model.generative ? h("option", { value: "answers" }, "questions and answers") : null);
  const redraw = () => {
    const answers = answersMode.value === "answers";
    rows.replaceChildren(...examples.map((example, index) => {
      const field = (name, placeholder) => h("input", { type: "text", name, placeholder,
        value: example[name] || "", oninput: (event) => { example[name] = event.target.value; } });
      return h("tr", { dataset: { index } },
        h("td", {}, h("img", { class: "thumb", src: example.url, alt: example.file.name })),
        h("td", {}, example.file.name),
        answers ? h("td", {}, field("question", "question")) : h("td", {}, field("label", "right label")),
        answers ? h("td", {}, field("answer", "right answer")) : null,
        h("td", {}, h("button", { type: "button", onclick: () => {
          examples.splice(index, 1);
          redraw();
        } }, "Remove")));
    }));
    count.textContent = `${examples.length} example(s)`;
  };
  const add = (picked) => {
    for (const { file, label } of picked) {
      if (!file.type.startsWith("image/")) continue;
      examples.push({ file, label, url: URL.createObjectURL(file) });
    }
    redraw();
  };
  const count = h("span", { class: "muted", id: "example-count" }, "0 example(s)");
  const fileInput = h("input", { type: "file", accept: "image/*", multiple: true, id: "pick-files",
    onchange: (event) => add(filesFromInput(event.target)) });
  const folderInput = h("input", { type: "file", multiple: true, webkitdirectory: true,
    id: "pick-folder", onchange: (event) => add(filesFromInput(event.target)) });
  const drop = h("div", { class: "drop", id: "drop-zone" },
    "Drop images here, or a folder per label (the folder's name is the label). ",
    h("div", { class: "actions", style: "justify-content: center" },
      h("label", {}, "Images: ", fileInput), h("label", {}, "Folders: ", folderInput)));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add(await filesFromDrop([...event.dataTransfer.items]));
  });
  const labelAll = h("input", { type: "text", placeholder: "label for every example without one",
    id: "label-all" });
  const method = h("select", { name: "method" },
    methods.map((name) => h("option", { value: name, selected: name === preset }, name)));
  const hyperparameters = h("textarea", { name: "hyperparameters",
    placeholder: '{"max_steps": 40}  (empty: the method\'s defaults)' });
  const seed = h("input", { type: "number", name: "seed", min: 0, placeholder: "random" });
  const targets = evalSets.filter((set) => set.kind === "target");
  const targetSets = h("select", { name: "target_sets", multiple: true },
    targets.map((set) => h("option", { value: set.name }, set.name)));
  answersMode.addEventListener("change", redraw);
  const submit = h("button", { class: "primary", id: "submit-correction" }, "Submit correction");
  const form = h("form", { class: "stack", id: "correction" },
    drop, count,
    h("label", { class: "field" }, "Examples are", answersMode),
    h("table", {}, rows),
    h("label", { class: "field" }, "Label for the rest", labelAll),
    h("label", { class: "field" }, "Method", method),
    h("label", { class: "field" }, "Hyperparameters (JSON object, validated by the API)", hyperparameters),
    h("label", { class: "field" }, "Seed", seed),
    targets.length ? h("label", { class: "field" }, "Target sets this fixes (optional)", targetSets) : null,
    h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    const answers = answersMode.value === "answers";
    for (const example of examples) {
      body.append("images", example.file, example.file.name);
      if (answers) {
        body.append("questions", example.question || "");
        body.append("answers", example.answer || "");
      } else {
        body.append("labels", example.label || labelAll.value);
      }
    }
    body.append("method", method.value);
    if (hyperparameters.value.trim()) body.append("hyperparameters", hyperparameters.value.trim());
    if (seed.value) body.append("seed", seed.value);
    for (const option of targetSets.selectedOptions) body.append("target_sets", option.value);
    submit.disabled = true;
    try {
      const accepted = await api(`/v1/models/${modelId}/corrections`, { method: "POST", form: body });
      location.hash = `#/jobs/${accepted.job_id}`;
    } catch (error) {
      notify(error);
    } finally {
      submit.disabled = false;
    }
  });
  return { element: h("section", {}, h("h1", {}, `New correction of ${model.name}`), form) };
}
