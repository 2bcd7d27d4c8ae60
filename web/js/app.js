// The page: sign-in, the three views (library + upload at `/`, a video at `/watch/{id}`, live
// streams at `/live`) routed on the client side with the history API, so deep links work (the
// edge serves this page for each of those paths).
import { api, apiKey, events, onUnauthorized, playbackUrl, setApiKey, shareLink, underSignature } from './api.js';
import { Library, stateText } from './library.js';
import { loadLive } from './live.js';
import { Player } from './player.js';
import { initUploads, startUpload } from './upload.js';
import { el, navigate, say } from './util.js';

const $ = (id) => document.getElementById(id);
const views = { library: $('view-library'), watch: $('view-watch'), live: $('view-live') };
const authStatus = $('auth-status');
const library = new Library({ list: $('library'), status: $('library-status'), more: $('library-more') });
const player = new Player();
/** What the browser tests (and a curious developer) can look at. */
window.ringcast = { player, library };

// ---- sign-in -------------------------------------------------------------------------------

function showSignedIn(signedIn) {
  $('key-input').hidden = signedIn;
  $('key-save').hidden = signedIn;
  $('key-clear').hidden = !signedIn;
}

function refused(message) {
  say(authStatus, `The API key was not accepted (wrong or revoked): ${message}`, true);
  document.body.dataset.auth = 'refused';
  showSignedIn(false);
}

onUnauthorized((err) => {
  if (apiKey()) refused(err.message);
  else {
    say(authStatus, 'This stack needs an API key: sign in with one (rck_…).', true);
    document.body.dataset.auth = 'required';
  }
});

/** Ask the API whether the key (or no key) is accepted. */
async function checkKey() {
  try {
    await api('GET', '/v1/videos?limit=1');
    document.body.dataset.auth = apiKey() ? 'key' : 'open';
    say(authStatus, apiKey() ? 'Signed in with an API key.' : 'Open mode: no API key needed.');
    showSignedIn(!!apiKey());
    return true;
  } catch (e) {
    if (e.status !== 401) say(authStatus, `The API is not reachable: ${e.message}`, true);
    return false;
  }
}

$('signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = $('key-input').value.trim();
  if (!key) return;
  setApiKey(key);
  $('key-input').value = '';
  if (await checkKey()) route();
});

$('key-clear').addEventListener('click', async () => {
  setApiKey('');
  showSignedIn(false);
  await checkKey();
  route();
});

// ---- uploads -------------------------------------------------------------------------------

initUploads({
  input: $('file-input'),
  zone: $('drop-zone'),
  list: $('uploads'),
  onDone: (id) => library.added(id),
  onAuthFailed: (reason) => refused(reason),
});

// ---- the watch view ------------------------------------------------------------------------

let watching = null; // { id, video, follow: AbortController }

/** A `?play=` source must be this origin's path (a signed playback URL from a share link). */
function sharedSource() {
  const p = new URLSearchParams(location.search).get('play');
  return p && p.startsWith('/') && !p.startsWith('//') ? p : null;
}

async function showWatch(id) {
  if (watching && watching.follow) watching.follow.abort();
  watching = { id, video: null, follow: null };
  const params = new URLSearchParams(location.search);
  const shared = sharedSource();
  const live = params.get('live') === '1';
  $('video-title').textContent = id;
  say($('watch-state'), 'Loading…');
  $('versions').replaceChildren();
  $('share-out').textContent = '';
  let v = null;
  // A live stream (it belongs to its stream key, not to the caller) and a shared link (the
  // visitor may have no key) play without the video's metadata.
  if (!shared && !live) {
    try {
      v = await api('GET', `/v1/videos/${encodeURIComponent(id)}`);
    } catch (e) {
      say($('watch-state'), `Cannot load this video: ${e.message}`, true);
      player.stop();
      $('manage').hidden = true;
      return;
    }
  }
  if (!watching || watching.id !== id) return;
  watching.video = v;
  $('manage').hidden = !v;
  if (v) {
    $('video-title').textContent = v.title || id;
    document.title = `${v.title || id} · ringcast`;
    $('edit-title').value = v.title;
    $('edit-description').value = v.description;
    $('edit-visibility').value = v.visibility;
    say($('watch-state'), stateText(v), v.status && v.status.state === 'failed');
    loadVersions(id);
  } else {
    say($('watch-state'), live ? 'live' : 'shared link');
  }
  if (shared) player.load(shared, { autoplay: true });
  else if (live) player.load(v ? v.playback_url : `/v/${encodeURIComponent(id)}/master.m3u8`, { autoplay: true, live: true });
  else if (v && v.status && v.status.playable) await play(v);
  else player.stop();
  if (v && ['queued', 'processing', 'uploading'].includes(v.status && v.status.state)) follow(id);
}

async function play(v) {
  const src = await playbackUrl(v);
  const thumbs = v.thumbnails ? (v.visibility === 'private' ? underSignature(src, v.thumbnails) : v.thumbnails) : null;
  // The current master is rewritten in place by a new version or a rollback, and the browser
  // may keep it for a second (max-age=1): naming the current version in the query (the edge
  // ignores it; relative variant URIs drop it) makes the browser fetch the new one at once.
  const fresh = `${src}${src.includes('?') ? '&' : '?'}current=${v.current_version ?? 0}`;
  player.load(fresh, { thumbnails: thumbs });
}

/** Follow the progress of the watched video until it is ready (then play it) or failed. */
function follow(id) {
  const ctl = new AbortController();
  watching.follow = ctl;
  const state = $('watch-state');
  events(id, (name, data) => {
    if (name === 'transcode') say(state, data.state === 'running' ? `transcoding ${Math.floor(data.progress || 0)} %` : data.state);
    if (name === 'upload') say(state, 'uploading');
    if (name === 'failed') say(state, `failed: ${data.error || 'unknown reason'}`, true);
  }, ctl.signal).then(() => {
    if (watching && watching.id === id && !ctl.signal.aborted) showWatch(id);
  }).catch(() => {});
}

async function loadVersions(id) {
  const list = $('versions');
  try {
    const r = await api('GET', `/v1/videos/${encodeURIComponent(id)}/versions`);
    list.replaceChildren(...r.versions.map((ver) => {
      const label = `version ${ver.version} · ${ver.state || 'unknown'}${ver.current ? ' · current' : ''}`;
      const li = el('li', { dataset: { version: String(ver.version), current: String(!!ver.current) } },
        el('span', { text: label }));
      if (!ver.current && ver.state === 'done') {
        const b = el('button', { type: 'button', class: 'rollback', text: 'Make current' });
        b.addEventListener('click', () => rollback(id, ver.version, b));
        li.append(b);
      }
      return li;
    }));
  } catch (e) {
    list.replaceChildren(el('li', { class: 'error', text: `Cannot list versions: ${e.message}` }));
  }
}

async function rollback(id, version, button) {
  button.disabled = true;
  try {
    await api('POST', `/v1/videos/${encodeURIComponent(id)}/rollback`, { version });
    await showWatch(id);
  } catch (e) {
    say($('watch-state'), `Rollback refused: ${e.message}`, true);
    button.disabled = false;
  }
}

$('edit').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!watching || !watching.video) return;
  const id = watching.id;
  const before = watching.video.visibility;
  try {
    const v = await api('PATCH', `/v1/videos/${encodeURIComponent(id)}`, {
      title: $('edit-title').value,
      description: $('edit-description').value,
      visibility: $('edit-visibility').value,
    });
    watching.video = v;
    $('video-title').textContent = v.title || id;
    say($('edit-status'), 'Saved.');
    // Private ↔ public changes where the player must fetch from (signed or not).
    if (v.visibility !== before && v.status && v.status.playable) await play(v);
  } catch (err) {
    say($('edit-status'), `Not saved: ${err.message}`, true);
  }
});

$('share').addEventListener('click', async () => {
  if (!watching) return;
  const v = watching.video || { video_id: watching.id, visibility: 'public' };
  try { say($('share-out'), await shareLink(v)); } catch (e) { say($('share-out'), e.message, true); }
});

$('delete').addEventListener('click', async () => {
  if (!watching || !watching.video) return;
  const v = watching.video;
  if (!confirm(`Delete “${v.title || v.video_id}” and every version of it?`)) return;
  try {
    await api('DELETE', `/v1/videos/${encodeURIComponent(v.video_id)}`);
    player.stop();
    navigate('/');
  } catch (e) {
    say($('watch-state'), `Not deleted: ${e.message}`, true);
  }
});

$('version-input').addEventListener('change', () => {
  const input = $('version-input');
  const file = input.files[0];
  input.value = '';
  if (!file || !watching) return;
  const id = watching.id;
  startUpload($('version-uploads'), file, {
    videoId: id,
    onDone: () => {
      if (watching && watching.id === id) { loadVersions(id); follow(id); }
    },
  });
});

// ---- routing -------------------------------------------------------------------------------

function show(name) {
  for (const [k, node] of Object.entries(views)) node.hidden = k !== name;
  for (const a of document.querySelectorAll('nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === location.pathname);
  }
}

function route() {
  const path = location.pathname;
  const watch = /^\/watch\/([^/]+)$/.exec(path);
  if (watch) {
    show('watch');
    showWatch(decodeURIComponent(watch[1]));
    return;
  }
  if (watching && watching.follow) watching.follow.abort();
  watching = null;
  player.stop();
  document.title = 'ringcast';
  if (path === '/live') {
    show('live');
    loadLive($('live-list'), $('live-status'));
  } else {
    show('library');
    library.load();
  }
}

for (const a of document.querySelectorAll('[data-nav]')) {
  a.addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    navigate(a.getAttribute('href'));
  });
}
window.addEventListener('popstate', route);
window.addEventListener('ringcast:navigate', () => { route(); $('main').focus({ preventScroll: true }); });

checkKey().then(route);
