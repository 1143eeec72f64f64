// The page's client of the web chat's JSON API: one fetch per call; a failure is a RequestError that
// carries the API's error type and message.

export class RequestError extends Error {
  constructor(status, type, message) { super(message); this.status = status; this.type = type; }
}

export async function api(method, url, body) {
  const options = {method, headers: {}};
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new RequestError(response.status, error.type ?? "error", error.message ?? `${response.status} ${response.statusText}`);
  }
  return data;
}
