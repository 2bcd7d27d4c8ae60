// The live streams running now (`GET /v1/live`), each with a watch link.
import { api } from './api.js';
import { el, navigate, say } from './util.js';

export async function loadLive(list, status) {
  say(status, 'Loading…');
  try {
    const { streams } = await api('GET', '/v1/live');
    list.replaceChildren(...streams.map((s) => {
      const href = `/watch/${encodeURIComponent(s.video_id)}?live=1`;
      const a = el('a', { class: 'title watch', href, text: s.title || s.video_id });
      a.addEventListener('click', (e) => { e.preventDefault(); navigate(href); });
      const since = new Date(s.started_ms).toLocaleTimeString();
      return el('li', { class: 'video', dataset: { id: s.video_id, state: 'live' } },
        el('div', { class: 'body' }, a,
          el('span', { class: 'state ready', text: `live · version ${s.version} · since ${since}` })));
    }));
    say(status, streams.length ? '' : 'No live stream is running.');
  } catch (e) {
    say(status, `Cannot list live streams: ${e.message}`, true);
  }
}
