// The API client: every call carries the signed-in key; errors keep the API's code.
const KEY = "vlmc-api-key";
const WHO = "vlmc-api-key-record";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  // The key's own record (GET /v1/api-keys/me): scopes and models decide what is offered.
  who: () => JSON.parse(sessionStorage.getItem(WHO) || "null"),
  signIn(key, record) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(WHO, JSON.stringify(record));
  },
  signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WHO);
  },
  // Mirrors the service's rule: admin holds every scope.
  can(scope) {
    const scopes = this.who()?.scopes || [];
    return scopes.includes("admin") || scopes.includes(scope);
  },
};

async function fail(response) {
  let code = "http_" + response.status;
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body.error) ({ code, message } = body.error);
  } catch {
    // not a JSON error body: keep the status line
  }
  throw new ApiError(response.status, code, message);
}

export async function api(path, { method = "GET", json, form, key, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  const token = key || session.key();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (!response.ok) await fail(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response;
}

// Follows a job's server-sent events with the key in a header (EventSource cannot send one),
// resuming after the last event id when the connection drops. Calls onEvent for each event;
// resolves when the stream ends (the job finished) or stop() is called.
export function followEvents(jobId, onEvent) {
  const controller = new AbortController();
  let lastId = null;
  const run = async () => {
    for (let attempt = 0; attempt < 50 && !controller.signal.aborted; attempt++) {
      try {
        const headers = { Authorization: `Bearer ${session.key()}`, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
        const response = await fetch(`/v1/jobs/${jobId}/events/stream`,
          { headers, signal: controller.signal });
        if (!response.ok) await fail(response);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = parseEvent(block);
            if (event) {
              lastId = event.id;
              onEvent(event.data);
            }
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status < 500) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  return { done: run(), stop: () => controller.abort() };
}

function parseEvent(block) {
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) id = Number(line.slice(3).trim());
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? { id, data: JSON.parse(data.join("\n")) } : null;
}
