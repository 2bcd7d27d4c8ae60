// The platform API, same origin (the edge's front door): the API key from localStorage as
// `Authorization: Bearer …` when there is one (an open-mode stack works without).

const KEY = 'ringcast.apiKey';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY) || '';
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Listeners told when the server refused the key (401). */
const unauthorized = new Set();
export function onUnauthorized(fn) { unauthorized.add(fn); }

/** The error a non-2xx response carries (`{"error":{"code","message"}}`). */
export async function errorOf(resp) {
  let code = `http_${resp.status}`, message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) { code = body.error.code || code; message = body.error.message || message; }
  } catch { /* not JSON */ }
  const err = new ApiError(resp.status, code, message);
  if (resp.status === 401) for (const fn of unauthorized) fn(err);
  return err;
}

/** `api('GET', '/v1/videos')` → parsed JSON (or null for an empty body); throws ApiError. */
export async function api(method, path, body) {
  const headers = { ...authHeaders() };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await errorOf(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The progress stream of a video (server-sent events read with fetch, since EventSource cannot
 * send Authorization). Calls `onEvent(name, data)`; resolves when the server ends the stream,
 * rejects on an error answer. `signal` aborts it.
 */
export async function events(id, onEvent, signal) {
  const resp = await fetch(`/v1/videos/${encodeURIComponent(id)}/events`, {
    headers: { ...authHeaders(), Accept: 'text/event-stream' },
    cache: 'no-store',
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!data) continue;
      try { onEvent(name, JSON.parse(data)); } catch { /* a malformed event is skipped */ }
    }
  }
}

/** Where video `v` plays: a signed URL for a private one, its public path otherwise. */
export async function playbackUrl(v) {
  if (v.visibility !== 'private') return v.playback_url;
  const r = await api('POST', `/v1/videos/${encodeURIComponent(v.video_id)}/playback`, {});
  return r.url || r.playback_url;
}

/** `path` (an edge path under `/v/{id}/`) under the same signature as `signed` (a `/s/…` URL). */
export function underSignature(signed, path) {
  if (!path || !signed) return path;
  const i = signed.indexOf('/v/');
  if (!signed.includes('/s/') || i < 0) return path;
  return signed.slice(0, i) + path;
}

/**
 * A link to give others: the watch page; for a private video with the signed playback URL in
 * it (`?play=`), so the page plays it without an API key until the signature expires.
 */
export async function shareLink(v) {
  const page = `${location.origin}/watch/${encodeURIComponent(v.video_id)}`;
  if (v.visibility !== 'private') {
    try { await navigator.clipboard.writeText(page); } catch { /* shown, not copied */ }
    return page;
  }
  const signed = await playbackUrl(v);
  const url = new URL(page);
  url.searchParams.set('play', signed);
  const text = url.toString();
  try { await navigator.clipboard.writeText(text); } catch { /* shown, not copied */ }
  return text;
}
