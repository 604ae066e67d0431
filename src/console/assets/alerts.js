// Urgent alerts on every console page: follows the picture's live stream and, when a partner's
// urgent report arrives (critical, or marked urgent), fetches the page's alerts block again, so
// the alert shows at once and stays until someone says they have seen it.
'use strict';

(function () {
  const block = document.getElementById('alerts');
  if (!block || !window.EventSource) return;
  const next = location.pathname + location.search;

  function urgent(report) {
    return report && report.source === 'received' && !report.retracted
      && (report.urgent === true || report.severity === 'critical');
  }

  async function refresh() {
    const response = await fetch('/console/alerts?next=' + encodeURIComponent(next), { credentials: 'same-origin' });
    if (!response.ok) return;
    const html = await response.text();
    const holder = document.createElement('div');
    holder.innerHTML = html;
    const fresh = holder.querySelector('#alerts');
    const current = document.getElementById('alerts');
    if (fresh && current) current.replaceWith(fresh);
  }

  const stream = new EventSource('/api/v1/situation/stream', { withCredentials: true });
  for (const kind of ['filed', 'updated']) {
    stream.addEventListener(kind, (event) => {
      let change;
      try { change = JSON.parse(event.data); } catch (_) { return; }
      if (urgent(change.report)) refresh().catch(() => {});
    });
  }
  stream.addEventListener('reset', () => refresh().catch(() => {}));
})();
