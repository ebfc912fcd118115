// The page's one message line: an action's failure shows the API's status, code and message.
import { ApiError } from "./api.js";

export function notify(error, kind = "error") {
  const notice = document.getElementById("notice");
  notice.className = kind === "error" ? "" : "info";
  notice.textContent = error instanceof ApiError ? String(error)
    : error instanceof Error ? error.message : String(error);
  notice.hidden = false;
}

export function clearNotice() {
  document.getElementById("notice").hidden = true;
}
