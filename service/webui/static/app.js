// The dashboard: a hash-routed page per view, all data from the same API a client uses.
import { ApiError, session } from "./api.js";
import { h } from "./dom.js";
import { clearNotice, notify } from "./notice.js";
import { adminPage } from "./pages/admin.js";
import { comparePage } from "./pages/compare.js";
import { correctPage } from "./pages/correct.js";
import { inboxPage } from "./pages/inbox.js";
import { jobPage } from "./pages/job.js";
import { modelPage } from "./pages/model.js";
import { modelsPage } from "./pages/models.js";
import { signInPage } from "./pages/signin.js";

const routes = [
  [/^#\/signin$/, signInPage],
  [/^#\/?$/, modelsPage],
  [/^#\/models\/([^/]+)$/, modelPage],
  [/^#\/models\/([^/]+)\/correct$/, correctPage],
  [/^#\/models\/([^/]+)\/compare$/, comparePage],
  [/^#\/models\/([^/]+)\/inbox$/, inboxPage],
  [/^#\/jobs\/([^/]+)$/, jobPage],
  [/^#\/admin$/, adminPage],
];

let leavePage = null; // the current page's clean-up (stops live streams)

function header() {
  const who = session.who();
  const nav = document.getElementById("nav");
  const badge = document.getElementById("who");
  nav.replaceChildren();
  badge.replaceChildren();
  if (!who) return;
  nav.append(h("a", { href: "#/" }, "Models"));
  if (session.can("admin")) nav.append(h("a", { href: "#/admin" }, "Keys and storage"));
  badge.append(`${who.name} (${who.scopes.join(", ")})`,
    h("button", { id: "sign-out", onclick: () => { session.signOut(); location.hash = "#/signin"; } },
      "Sign out"));
}

async function render() {
  if (leavePage) leavePage();
  leavePage = null;
  clearNotice();
  const hash = location.hash || "#/";
  if (!session.key() && hash !== "#/signin") {
    location.hash = "#/signin";
    return;
  }
  header();
  const main = document.getElementById("page");
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const view = await page(...match.slice(1).map(decodeURIComponent));
      main.replaceChildren(view.element);
      leavePage = view.leave || null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        session.signOut();
        location.hash = "#/signin";
        return;
      }
      main.replaceChildren(h("h1", {}, "Could not load this page"));
      notify(error);
    }
    return;
  }
  main.replaceChildren(h("h1", {}, "No such page"), h("a", { href: "#/" }, "Models"));
}

window.addEventListener("hashchange", render);
render();
