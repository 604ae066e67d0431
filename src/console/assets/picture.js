// The situation picture page: loads the picture through the API (/api/v1/situation, every page),
// draws it (own and received reports; a point as a marker, clustered when dense; a location shared
// as a grid cell as that square; a time as precise as it was shared), lists what is in the map's
// view, and follows the live stream (/api/v1/situation/stream) from where the loaded picture ends,
// so every change shows within moments, without a reload.
'use strict';

(function () {
  const { cellBounds, baseLayer, el, sharedTime, debounce } = window.Lagesbild;
  const mapEl = document.getElementById('map');
  const cfg = JSON.parse(mapEl.dataset.config);
  const labels = cfg.labels;
  const listEl = document.getElementById('list');
  const countEl = document.getElementById('list-count');
  const liveEl = document.getElementById('live');

  const map = L.map(mapEl, { preferCanvas: true, maxZoom: 19, minZoom: 3 });
  baseLayer(map, cfg.tiles);
  const cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45 });
  const cells = L.layerGroup();
  map.addLayer(cluster);
  map.addLayer(cells);

  /** Every report shown, by id: the report as the API serves it, and its layer on the map. */
  const shown = new Map();
  // Own reports that wait for a coordinator's release: nothing of them has left the node.
  const held = new Set();
  let stream = null;
  let fitted = false;

  // The severities' colours live in the stylesheet (--sev-*); the canvas draws cells with them.
  const styles = getComputedStyle(document.documentElement);
  const severityColour = (severity) => styles.getPropertyValue(`--sev-${severity}`).trim() || '#555';
  const isOwn = (r) => r.source === 'own';
  const titleOf = (r) => r.title || labels.categories[r.category] || r.category;
  const originName = (r) => cfg.partners[r.origin] || r.origin;

  /** Where a report is drawn: a point, a cell, or nowhere (only a municipality was shared). */
  function placeOf(r) {
    if (isOwn(r)) return { kind: 'point', lat: r.location.lat, lon: r.location.lon };
    const l = r.location;
    if (l && l.lat !== undefined && l.lon !== undefined) {
      return l.cell_metres ? { kind: 'cell', lat: l.lat, lon: l.lon, metres: l.cell_metres } : { kind: 'point', lat: l.lat, lon: l.lon };
    }
    const code = l && l.municipality_code;
    const municipality = code && cfg.municipalities[code];
    if (municipality) return { kind: 'municipality', lat: municipality.lat, lon: municipality.lon, name: municipality.name, code };
    return { kind: 'none', municipality: code };
  }

  function whenOf(r) {
    if (isOwn(r)) return sharedTime(r.observed_at, 'exact', cfg.zone, cfg.lang);
    if (!r.observed_at) return labels.time_hidden;
    return sharedTime(r.observed_at, r.time_precision || 'exact', cfg.zone, cfg.lang);
  }

  function whereOf(r, place) {
    const words = [];
    const site = isOwn(r) ? r.location.site : r.site;
    if (site) words.push(site.name || labels.site_kinds[site.kind] || site.kind);
    const l = r.location || {};
    if (l.place_name) words.push(l.place_name);
    if (place.kind === 'cell') words.push(labels.cell_square.replace('{m}', place.metres));
    if (place.kind === 'none' && place.municipality) words.push(labels.in_municipality.replace('{code}', place.municipality));
    if (place.kind === 'municipality') words.push(labels.in_municipality.replace('{code}', `${place.name} (${place.code})`));
    return words.join(', ');
  }

  /** The few lines a popup and a list item show of a report. */
  function describe(r, place) {
    // A report shared without its title is named by its category: not said twice.
    const meta = [r.title ? labels.categories[r.category] : null, labels.severities[r.severity], whenOf(r), whereOf(r, place)];
    meta.push(isOwn(r) ? labels.own_report : `${labels.received_from} ${originName(r)}`);
    if (held.has(r.id)) meta.push(labels.held);
    return el('div', { class: 'summary' },
      el('a', { href: `/console/reports/${r.id}`, class: 'title' }, titleOf(r)),
      el('span', { class: 'meta' }, meta.filter(Boolean).join(' · ')));
  }

  function layerOf(r, place) {
    const classes = `sev-${r.severity}${isOwn(r) ? '' : ' received'}`;
    let layer = null;
    if (place.kind === 'point') {
      layer = L.marker([place.lat, place.lon], {
        icon: L.divIcon({ className: `mk ${classes}`, iconSize: [16, 16] }),
        title: titleOf(r),
        keyboard: true,
      });
    } else if (place.kind === 'municipality') {
      // Shared only to the municipality: a label at its centre, not a point that pretends to know more.
      const label = el('span', { class: `mk-muni ${classes}` }, place.name);
      layer = L.marker([place.lat, place.lon], { icon: L.divIcon({ className: 'mk-muni-anchor', html: label, iconSize: null }), title: titleOf(r) });
    } else if (place.kind === 'cell') {
      const colour = severityColour(r.severity);
      layer = L.rectangle(cellBounds(place.lat, place.lon, place.metres), {
        color: colour, fillColor: colour, fillOpacity: 0.25, weight: 2, dashArray: '5 4',
      });
    }
    if (layer) layer.bindPopup(() => describe(r, place));
    return layer;
  }

  function add(r, batch) {
    const place = placeOf(r);
    const layer = layerOf(r, place);
    shown.set(r.id, { report: r, place, layer });
    if (!layer) return;
    if (place.kind === 'cell') cells.addLayer(layer);
    else if (batch) batch.push(layer);
    else cluster.addLayer(layer);
  }

  function remove(id) {
    const old = shown.get(id);
    if (!old) return;
    if (old.layer) {
      if (old.place.kind === 'cell') cells.removeLayer(old.layer);
      else cluster.removeLayer(old.layer);
    }
    shown.delete(id);
  }

  function inView(entry, bounds) {
    const p = entry.place;
    if (p.kind === 'point' || p.kind === 'municipality') return bounds.contains([p.lat, p.lon]);
    if (p.kind === 'cell') return bounds.intersects(L.latLngBounds(cellBounds(p.lat, p.lon, p.metres)));
    return true;
  }

  const endOf = (r) => Date.parse(r.observed_until || r.observed_at || 0);

  /** The list beside the map: what is in its view, newest first (at most 300 items drawn). */
  function renderList() {
    const bounds = map.getBounds();
    const visible = [...shown.values()].filter((e) => inView(e, bounds));
    visible.sort((a, b) => endOf(b.report) - endOf(a.report));
    const items = visible.slice(0, 300).map((e) => {
      const item = el('li', { class: `item sev-${e.report.severity}${isOwn(e.report) ? '' : ' received'}`, 'data-id': e.report.id },
        describe(e.report, e.place));
      if (e.place.kind === 'none') item.append(el('small', { class: 'nopoint' }, labels.list_without_point));
      return item;
    });
    listEl.replaceChildren(...items);
    if (items.length === 0) listEl.append(el('li', { class: 'empty' }, labels.list_empty));
    countEl.textContent = `(${labels.shown_count.replace('{n}', String(visible.length))})`;
  }

  function fit() {
    const points = [...shown.values()].filter((e) => e.place.kind !== 'none').map((e) => [e.place.lat, e.place.lon]);
    const sites = cfg.sites.map((s) => [s.lat, s.lon]);
    const all = points.length ? points : sites;
    if (all.length) map.fitBounds(L.latLngBounds(all).pad(0.2), { maxZoom: 15 });
    else map.setView([62.0, 15.0], 5);
  }

  /** Loads the whole picture, page by page, then follows the stream from where it ends. */
  async function load() {
    if (stream) stream.close();
    cluster.clearLayers();
    cells.clearLayers();
    shown.clear();
    held.clear();
    let url = `${cfg.situation}${cfg.situation.includes('?') ? '&' : '?'}limit=${cfg.page_size}`;
    let lastEvent = null;
    const batch = [];
    for (let pages = 0; url && pages < 50; pages += 1) {
      const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (response.status === 401) {
        window.location.assign(`/console/signin?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
        return;
      }
      if (!response.ok) throw new Error(`the picture could not be loaded (${response.status})`);
      const page = await response.json();
      if (lastEvent === null) lastEvent = page.last_event_id;
      for (const id of page.held || []) held.add(id);
      for (const r of page.reports) add(r, batch);
      url = page.next_cursor ? `${cfg.situation}&limit=${cfg.page_size}&cursor=${encodeURIComponent(page.next_cursor)}` : null;
    }
    cluster.addLayers(batch);
    if (!fitted) {
      fit();
      fitted = true;
    }
    renderList();
    performance.mark('lagesbild:map-drawn');
    mapEl.dataset.drawn = String(shown.size);
    follow(lastEvent);
  }

  const relist = debounce(renderList, 150);

  /** Applies one change of the stream: the report as it now stands, or gone. */
  function apply(event) {
    const change = JSON.parse(event.data);
    remove(change.id);
    if (change.report) add(change.report, null);
    mapEl.dataset.lastEvent = String(change.seq);
    relist();
  }

  function follow(lastEvent) {
    const url = `${cfg.stream}${cfg.stream.includes('?') ? '&' : '?'}last_event_id=${lastEvent}`;
    stream = new EventSource(url, { withCredentials: true });
    for (const kind of ['filed', 'updated', 'retracted', 'withdrawn', 'erased', 'deleted']) {
      stream.addEventListener(kind, apply);
    }
    stream.addEventListener('reset', () => load().catch(failed));
    stream.onopen = () => { liveEl.textContent = labels.live_on; liveEl.className = 'live on'; };
    stream.onerror = () => { liveEl.textContent = labels.live_off; liveEl.className = 'live off'; };
  }

  function failed(error) {
    liveEl.textContent = String(error.message || error);
    liveEl.className = 'live off';
  }

  /** Reports whose time has left a window that reaches back from now. */
  function prune() {
    if (!cfg.window_seconds) return;
    const oldest = Date.now() - cfg.window_seconds * 1000;
    for (const [id, e] of shown) {
      if (endOf(e.report) < oldest) remove(id);
    }
    relist();
  }

  map.on('moveend', relist);
  setInterval(prune, 60e3);
  load().catch(failed);
})();
