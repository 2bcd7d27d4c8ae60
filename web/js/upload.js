// Resumable uploads with tus-js-client (window.tus, vendored): progress, speed and ETA per
// file, pause/resume, and resume after a reload — tus-js-client keeps each unfinished upload's
// URL in localStorage under a fingerprint of the file (name, type, size, modification time);
// picking the same file again continues from the server's offset instead of starting over.
import { authHeaders } from './api.js';
import { el, bytes, duration, say } from './util.js';

/** The server's reason for refusing an upload, from tus-js-client's DetailedError. */
function reasonOf(err) {
  const res = err && err.originalResponse;
  if (res) {
    const status = res.getStatus();
    try {
      const body = JSON.parse(res.getBody() || '');
      if (body && body.error && body.error.message) return `${body.error.message} (${status})`;
    } catch { /* not JSON */ }
    return `the server answered ${status}`;
  }
  return String((err && err.message) || err);
}

function isAuthFailure(err) {
  const res = err && err.originalResponse;
  return !!res && res.getStatus() === 401;
}

/**
 * Start uploading `file`; `opts.videoId` makes it a new version of that video. `onDone(videoId)`
 * is called once the server took the file.
 */
export function startUpload(list, file, opts = {}) {
  const progress = el('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
  const pct = el('span', { class: 'pct', text: '0 %' });
  const meta = el('span', { class: 'meta', text: bytes(file.size) });
  const error = el('p', { class: 'error', role: 'alert' });
  const pause = el('button', { type: 'button', class: 'pause', text: 'Pause' });
  const item = el('li', { class: 'upload', dataset: { state: 'uploading' } },
    el('div', {}, el('strong', { text: file.name }), ' ', pct, ' ', meta), pause, progress, error);
  list.prepend(item);

  let videoId = opts.videoId || null;
  let paused = false;
  // Speed over a sliding window of progress samples (bytes/s), for a steady ETA.
  const samples = [];
  const setState = (s) => { item.dataset.state = s; };
  const upload = new window.tus.Upload(file, {
    endpoint: '/files/',
    headers: authHeaders(),
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    metadata: {
      filename: file.name,
      filetype: file.type || 'application/octet-stream',
      ...(opts.videoId ? { video_id: opts.videoId } : { title: file.name.replace(/\.[^.]+$/, '') }),
    },
    onProgress(sent, total) {
      const now = performance.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [t0, b0] = samples[0];
      const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
      const p = total ? Math.floor((sent / total) * 1000) / 10 : 0;
      progress.value = p;
      pct.textContent = `${p} %`;
      const eta = speed > 0 ? duration((total - sent) / speed) : '–';
      meta.textContent = `${bytes(sent)} of ${bytes(total)} · ${bytes(speed)}/s · ETA ${eta}`;
    },
    onAfterResponse(_req, res) {
      const id = res.getHeader('Ringcast-Video-Id');
      if (id) videoId = id;
    },
    onSuccess() {
      progress.value = 100;
      pct.textContent = '100 %';
      setState('done');
      pause.hidden = true;
      const id = videoId || upload.url.split('/').pop();
      meta.textContent = `${bytes(file.size)} · uploaded, processing`;
      if (opts.onDone) opts.onDone(id);
    },
    onError(err) {
      setState('failed');
      pause.hidden = true;
      // A refusal (4xx other than a lock or an offset race) is final: forget the stored URL,
      // so the next page load does not offer to resume it.
      const status = err && err.originalResponse ? err.originalResponse.getStatus() : 0;
      if (status >= 400 && status < 500 && status !== 409 && status !== 423) forget(upload);
      if (isAuthFailure(err)) for (const fn of authFailed) fn(reasonOf(err));
      say(error, `Not accepted: ${reasonOf(err)}`, true);
    },
  });

  pause.addEventListener('click', () => {
    if (!paused) {
      upload.abort();
      paused = true;
      setState('paused');
      pause.textContent = 'Resume';
    } else {
      paused = false;
      setState('uploading');
      pause.textContent = 'Pause';
      upload.start();
    }
  });

  upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      meta.textContent = `${bytes(file.size)} · resuming an earlier upload`;
    }
    upload.start();
  });
  return upload;
}

const authFailed = new Set();

/** Drop the resumable-upload records tus-js-client keeps for this file. */
async function forget(upload) {
  const storage = window.tus.defaultOptions.urlStorage;
  try {
    for (const prev of await upload.findPreviousUploads()) await storage.removeUpload(prev.urlStorageKey);
  } catch { /* nothing stored */ }
}

/** Uploads a reload interrupted (tus-js-client's stored URLs): listed, to be picked again. */
export async function listInterrupted(list) {
  const storage = window.tus && window.tus.defaultOptions && window.tus.defaultOptions.urlStorage;
  if (!storage || !storage.findAllUploads) return;
  const stored = await storage.findAllUploads();
  for (const u of stored) {
    const name = (u.metadata && u.metadata.filename) || 'a file';
    const forget = el('button', { type: 'button', text: 'Forget' });
    const item = el('li', { class: 'upload', dataset: { state: 'interrupted' } },
      el('div', {}, el('strong', { text: name }), ' ',
        el('span', { class: 'meta', text: `${bytes(u.size)} · interrupted: choose the same file again to resume` })),
      forget);
    forget.addEventListener('click', async () => {
      await storage.removeUpload(u.urlStorageKey);
      item.remove();
    });
    list.append(item);
  }
}

/** Wire the file input and the drop zone. */
export function initUploads({ input, zone, list, onDone, onAuthFailed }) {
  if (onAuthFailed) authFailed.add(onAuthFailed);
  const take = (files) => {
    for (const f of files) {
      // An interrupted entry for this file goes: the new row shows the resumed upload.
      for (const row of list.querySelectorAll('[data-state="interrupted"]')) {
        if (row.querySelector('strong').textContent === f.name) row.remove();
      }
      startUpload(list, f, { onDone });
    }
  };
  input.addEventListener('change', () => { take([...input.files]); input.value = ''; });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take([...e.dataTransfer.files]);
  });
  listInterrupted(list).catch(() => {});
}
