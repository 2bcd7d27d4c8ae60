// The caller's videos: poster, title, duration, state (transcoding percent live from the
// progress stream), versions; share and delete from the card, everything else on the watch
// view.
import { api, events, playbackUrl, shareLink, underSignature } from './api.js';
import { el, duration, navigate, say } from './util.js';

const PAGE = 24;
/** Open progress streams by video id (aborted when the list is redrawn). */
const following = new Map();

/** The one-line state of a video (`status` from the videos API). */
export function stateText(v) {
  const s = v.status || {};
  const t = s.transcode || {};
  switch (s.state) {
    case 'uploading': return `uploading ${s.upload ? s.upload.progress : 0} %`;
    case 'queued': return 'queued';
    case 'processing': return `transcoding ${Math.floor(t.progress || 0)} %`;
    case 'ready': return 'ready';
    case 'failed': return `failed: ${t.error || 'unknown reason'}`;
    case 'cancelled': return 'cancelled';
    default: return s.playable ? 'ready' : (s.state || 'unknown');
  }
}

function stateClass(v) {
  const s = (v.status && v.status.state) || 'unknown';
  return `state ${s}`;
}

export class Library {
  constructor({ list, status, more }) {
    this.list = list;
    this.status = status;
    this.more = more;
    this.cursor = null;
    more.addEventListener('click', () => this.load(false));
  }

  async load(fresh = true) {
    if (fresh) {
      for (const c of following.values()) c.abort();
      following.clear();
      this.cursor = null;
      this.list.replaceChildren();
    }
    say(this.status, 'Loading…');
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (this.cursor) q.set('cursor', this.cursor);
      const page = await api('GET', `/v1/videos?${q}`);
      for (const v of page.videos) this.list.append(this.card(v));
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
      say(this.status, this.list.children.length ? '' : 'No videos yet: upload one above.');
    } catch (e) {
      say(this.status, `Cannot list videos: ${e.message}`, true);
    }
  }

  /** A new upload finished: show its card and follow its progress. */
  async added(id) {
    try {
      const v = await api('GET', `/v1/videos/${encodeURIComponent(id)}`);
      const old = this.list.querySelector(`[data-id="${CSS.escape(id)}"]`);
      const card = this.card(v);
      if (old) old.replaceWith(card);
      else this.list.prepend(card);
      say(this.status, '');
    } catch (e) {
      say(this.status, `Cannot read video ${id}: ${e.message}`, true);
    }
  }

  card(v) {
    const id = v.video_id;
    const img = el('img', { alt: '', loading: 'lazy' });
    const thumb = el('a', { class: 'thumb', href: `/watch/${encodeURIComponent(id)}`, 'aria-label': `Watch ${v.title || id}` },
      img, v.duration_secs ? el('span', { class: 'duration', text: duration(v.duration_secs) }) : null);
    const state = el('span', { class: stateClass(v), text: stateText(v) });
    const share = el('button', { type: 'button', class: 'share', text: 'Share' });
    const del = el('button', { type: 'button', class: 'delete danger', text: 'Delete' });
    const out = el('output', { class: 'share-out' });
    const versions = v.latest_version
      ? `version ${v.current_version ?? '–'} of ${v.latest_version}` : '';
    const card = el('li', { class: 'video', dataset: { id, state: (v.status && v.status.state) || '' } },
      thumb,
      el('div', { class: 'body' },
        el('a', { class: 'title watch', href: `/watch/${encodeURIComponent(id)}`, text: v.title || id }),
        state,
        el('span', { class: 'meta', text: `${v.visibility}${versions ? ' · ' + versions : ''}` }),
        el('div', { class: 'actions' }, share, del),
        out));
    for (const a of card.querySelectorAll('a')) {
      a.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        navigate(a.getAttribute('href'));
      });
    }
    if (v.poster) {
      const setPoster = async () => {
        img.src = v.visibility === 'private' ? underSignature(await playbackUrl(v), v.poster) : v.poster;
      };
      setPoster().catch(() => {});
    }
    share.addEventListener('click', async () => {
      try { say(out, await shareLink(v)); } catch (e) { say(out, e.message, true); }
    });
    del.addEventListener('click', async () => {
      if (!confirm(`Delete “${v.title || id}” and every version of it?`)) return;
      try {
        await api('DELETE', `/v1/videos/${encodeURIComponent(id)}`);
        card.remove();
      } catch (e) { say(out, `Not deleted: ${e.message}`, true); }
    });
    const s = v.status && v.status.state;
    if (s === 'queued' || s === 'processing' || s === 'uploading') this.follow(v, state, card);
    return card;
  }

  /** Follow a video's progress stream; refresh the card when it ends. */
  follow(v, state, card) {
    const id = v.video_id;
    if (following.has(id)) following.get(id).abort();
    const ctl = new AbortController();
    following.set(id, ctl);
    events(id, (name, data) => {
      if (name === 'transcode') {
        const p = Math.floor(data.progress || 0);
        state.textContent = data.state === 'running' ? `transcoding ${p} %` : data.state;
        card.dataset.state = data.state === 'running' ? 'processing' : data.state;
      } else if (name === 'upload') {
        const p = data.length ? Math.floor((data.offset * 1000) / data.length) / 10 : 0;
        state.textContent = `uploading ${p} %`;
      } else if (name === 'failed') {
        state.textContent = `failed: ${data.error || 'unknown reason'}`;
        state.className = 'state failed';
        card.dataset.state = 'failed';
      }
    }, ctl.signal)
      .then(() => { if (following.get(id) === ctl) { following.delete(id); this.added(id); } })
      .catch(() => { following.delete(id); });
  }
}
