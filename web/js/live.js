// The live streams running now (`GET /v1/live`), each with a watch link once it plays.
//
// A stream that has just started is listed before its master playlist exists (the transcoder
// writes it once every rendition keeps real time, up to 5 s after the push starts): it shows
// as starting, without a link that would load a 404, and the list asks again every second
// while this view is open and something is starting.
import { api } from './api.js';
import { el, navigate, say } from './util.js';

const RECHECK_MS = 1000;
let recheck = null;

export async function loadLive(list, status) {
  clearTimeout(recheck);
  say(status, 'Loading…');
  let starting = false;
  try {
    const { streams } = await api('GET', '/v1/live');
    list.replaceChildren(...streams.map((s) => {
      const since = new Date(s.started_ms).toLocaleTimeString();
      const name = s.title || s.video_id;
      if (!s.playable) {
        starting = true;
        return el('li', { class: 'video', dataset: { id: s.video_id, state: 'starting' } },
          el('div', { class: 'body' }, el('span', { class: 'title', text: name }),
            el('span', { class: 'state', text: `starting… · version ${s.version} · since ${since}` })));
      }
      const href = `/watch/${encodeURIComponent(s.video_id)}?live=1`;
      const a = el('a', { class: 'title watch', href, text: name });
      a.addEventListener('click', (e) => { e.preventDefault(); navigate(href); });
      return el('li', { class: 'video', dataset: { id: s.video_id, state: 'live' } },
        el('div', { class: 'body' }, a,
          el('span', { class: 'state ready', text: `live · version ${s.version} · since ${since}` })));
    }));
    say(status, streams.length ? '' : 'No live stream is running.');
  } catch (e) {
    say(status, `Cannot list live streams: ${e.message}`, true);
  }
  if (starting) {
    recheck = setTimeout(() => { if (location.pathname === '/live') loadLive(list, status); }, RECHECK_MS);
  }
}
