import { api, session } from "../api.js";
import { h } from "../dom.js";
import { notify } from "../notice.js";

export async function signInPage() {
  const input = h("input", { type: "password", name: "api-key", autocomplete: "off",
    placeholder: "vlmc_…", required: true, style: "width: 28rem" });
  const form = h("form", { class: "stack", id: "sign-in" },
    h("label", { class: "field" }, "API key", input),
    h("div", { class: "actions" }, h("button", { class: "primary" }, "Sign in")),
    h("p", { class: "muted" }, "The key stays in this tab (session storage) and goes with each ",
      "API call as a bearer token. What the key may not do is not offered."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const key = input.value.trim();
      const record = await api("/v1/api-keys/me", { key });
      session.signIn(key, record);
      location.hash = "#/";
    } catch (error) {
      notify(error);
    }
  });
  return { element: h("section", {}, h("h1", {}, "Sign in"), form) };
}
