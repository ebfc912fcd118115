import { api, followEvents, session } from "../api.js";
import { h, seconds, when } from "../dom.js";
import { notify } from "../notice.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

function eventLine(event) {
  const data = Object.keys(event.data || {}).length ? " " + JSON.stringify(event.data) : "";
  return h("div", { class: "event", dataset: { type: event.type } },
    `${new Date(event.created_at).toLocaleTimeString()}  ${event.type.padEnd(8)} `,
    event.message || "", data);
}

function summary(job, resultNumber) {
  const progress = job.progress;
  const fraction = progress.total ? progress.step / progress.total : FINISHED.has(job.status) ? 1 : 0;
  const kind = { succeeded: "ok", failed: "bad", cancelled: "warn" }[job.status] || "";
  return h("div", { class: "card", id: "job-summary" },
    h("div", { class: "kv" },
      h("span", { class: "muted" }, "status"),
      h("span", {}, h("span", { class: `badge ${kind}`, id: "job-status" }, job.status),
        job.cancel_requested && !FINISHED.has(job.status) ? " (cancel requested)" : ""),
      h("span", { class: "muted" }, "phase"), h("span", { id: "job-phase" }, progress.phase || "—"),
      h("span", { class: "muted" }, "step"),
      h("span", { id: "job-step" }, progress.total ? `${progress.step} of ${progress.total}` : "—"),
      h("span", { class: "muted" }, "elapsed"), h("span", {}, seconds(progress.elapsed_s)),
      h("span", { class: "muted" }, "time left"), h("span", { id: "job-eta" }, seconds(progress.eta_s)),
      h("span", { class: "muted" }, "method"), h("span", {}, job.method),
      h("span", { class: "muted" }, "hyperparameters"),
      h("span", { class: "wrap" }, Object.entries(job.hyperparameters)
        .map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(", ")),
      h("span", { class: "muted" }, "seed / attempts"), h("span", {}, `${job.seed} / ${job.attempts}`),
      h("span", { class: "muted" }, "created"), h("span", {}, when(job.created_at)),
      h("span", { class: "muted" }, "result"),
      h("span", {}, job.result_version_id
        ? h("a", { href: `#/models/${job.model_id}`, id: "job-result" },
          resultNumber ? `version ${resultNumber}` : "new version (see model)")
        : "—"),
      job.error ? h("span", { class: "muted" }, "error") : null,
      job.error ? h("span", { class: "badge bad" }, `${job.error.code}: ${job.error.message}`) : null),
    h("div", { class: "progress", style: "margin-top: .6rem" },
      h("div", { style: `width: ${(100 * fraction).toFixed(1)}%` })));
}

export async function jobPage(jobId) {
  let job = await api(`/v1/jobs/${jobId}`);
  const model = await api(`/v1/models/${job.model_id}`).catch(() => null);
  // The number of the version the job made (it reads better than an id), read once it exists.
  let resultNumber = null;
  const readResultNumber = async () => {
    if (resultNumber !== null || !job.result_version_id) return;
    const path = `/v1/models/${job.model_id}/versions/${job.result_version_id}`;
    resultNumber = await api(path).then((version) => version.number, () => null);
  };
  await readResultNumber();
  const head = h("div", {}, summary(job, resultNumber));
  const log = h("div", { class: "events", id: "events" });
  const cancel = h("button", { class: "danger", id: "cancel-job", onclick: async () => {
    try {
      job = await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" });
      head.replaceChildren(summary(job, resultNumber));
    } catch (error) {
      notify(error);
    }
  } }, "Cancel job");
  const showCancel = () => {
    cancel.hidden = !session.can("corrections") || FINISHED.has(job.status);
  };
  showCancel();
  let refreshing = null;
  const refresh = () => {
    refreshing ??= api(`/v1/jobs/${jobId}`).then(async (latest) => {
      job = latest;
      await readResultNumber();
      head.replaceChildren(summary(job, resultNumber));
      showCancel();
    }).catch(notify).finally(() => { refreshing = null; });
    return refreshing;
  };
  const stream = followEvents(jobId, (event) => {
    log.append(eventLine(event));
    log.scrollTop = log.scrollHeight;
    if (event.type !== "log") refresh();
  });
  stream.done.then(refresh).catch(notify);
  const element = h("section", {},
    h("h1", {}, "Job ", h("code", {}, jobId.slice(0, 8)), " of ",
      h("a", { href: `#/models/${job.model_id}`, id: "job-model" }, model ? model.name : "its model")),
    head, h("div", { class: "actions" }, cancel), h("h2", {}, "Events (live)"), log);
  return { element, leave: stream.stop };
}
