// Requests between partners, live: follows the requests' stream and, when one changes, fetches
// the page again and puts in its fresh list or thread, leaving any form being written alone.
'use strict';

(function () {
  const live = document.querySelector('[data-requests-live]');
  if (!live || !window.EventSource) return;
  const only = live.getAttribute('data-request');
  // The change the page shows: the stream starts after it, so nothing in between is missed.
  const since = live.getAttribute('data-since');

  async function refresh() {
    const response = await fetch(location.pathname + location.search, { credentials: 'same-origin' });
    if (!response.ok) return;
    const holder = document.createElement('div');
    holder.innerHTML = await response.text();
    const fresh = holder.querySelector('[data-requests-live]');
    const current = document.querySelector('[data-requests-live]');
    if (fresh && current) current.replaceWith(fresh);
  }

  const from = since ? '?last_event_id=' + encodeURIComponent(since) : '';
  const stream = new EventSource('/api/v1/requests/stream' + from, { withCredentials: true });
  stream.addEventListener('request', (event) => {
    let request;
    try { request = JSON.parse(event.data); } catch (_) { return; }
    if (!only || request.id === only) refresh().catch(() => {});
  });
})();
