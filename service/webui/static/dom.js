// A small element builder: text always goes in as text (never parsed as HTML), so values
// from the API (labels, reasons, names) cannot inject markup.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function table(headers, rows, attributes = {}) {
  return h("table", attributes,
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", {}, name)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length,
      class: "muted" }, "none yet"))));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function signed(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  return (value >= 0 ? "+" : "") + value.toFixed(digits);
}

export function percent(value) {
  return value === null || value === undefined ? "—" : (100 * value).toFixed(1) + "%";
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.round(value);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// A modal asking for one line of text (a reason): resolves to the text, or null if cancelled.
export function askText(title, placeholder) {
  return new Promise((resolve) => {
    const input = h("input", { type: "text", name: "reason", placeholder, required: true,
      style: "width: 100%" });
    const dialog = h("dialog", {},
      h("form", { method: "dialog", class: "stack" },
        h("strong", {}, title), input,
        h("div", { class: "actions" },
          h("button", { value: "cancel", formnovalidate: true }, "Cancel"),
          h("button", { value: "ok", class: "primary" }, "Confirm"))));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? input.value.trim() : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
